package scpgate

// CloseReason says why a controller session ended or a connection was
// refused. Every close and rejection is logged and counted under one.
type CloseReason string

// Close reasons.
const (
	ReasonControllerClosed CloseReason = "controller_closed" // controller hung up or said bye
	ReasonHeartbeatTimeout CloseReason = "heartbeat_timeout" // silent past the offline time
	ReasonTakenOver        CloseReason = "taken_over"        // the same serial connected again (here or on another driver)
	ReasonDrained          CloseReason = "drained"           // driver draining: controller sent elsewhere
	ReasonProtocolError    CloseReason = "protocol_error"    // malformed or unexpected frame
	ReasonRejected         CloseReason = "rejected"          // refused at handshake (see RejectReason)
	ReasonHandshakeTimeout CloseReason = "handshake_timeout" // no hello within the handshake deadline
	ReasonSlowConsumer     CloseReason = "slow_consumer"     // controller stopped reading; its send queue filled
	ReasonWriteError       CloseReason = "write_error"       // socket write failed or timed out
	ReasonShutdown         CloseReason = "shutdown"          // driver stopped before draining finished
	ReasonShed             CloseReason = "shed"              // released by a remote drain (scpgate drain) to rebalance drivers
)
