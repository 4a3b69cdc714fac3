// Package streams is the one place where scpgate's NATS subjects, JetStream
// streams and key-value buckets are named, configured and created.
//
// Every other package builds subjects with the functions here, never by
// concatenating strings, so a controller serial is validated once before it
// becomes a subject token:
//
//	scp.evt.<serial>.<kind>   stream SCP_EVENTS   controller events
//	scp.cmd.<serial>          stream SCP_COMMANDS per-controller command queue
//	scp.res.<serial>          stream SCP_RESULTS  one result per command
//
// and the buckets scp_sessions (presence and fencing), scp_cursors (last
// completed command per controller) and scp_state (current state, written by
// ingest). [Ensure], which every service runs at start, creates the missing
// ones and checks the existing ones against the service's [Config] without
// changing them; [Apply], run by an operator (`scpgate streams apply`),
// creates or updates them. [EnsureRetry] retries Ensure while JetStream is
// not ready.
package streams
