// Package driver accepts controller connections (SCP/TCP, package
// scpbridge), runs one session per controller and publishes every
// controller transaction to JetStream as an scpgate.Event on
// scp.evt.<serial>.<kind>.
//
// # Guarantees
//
// A transaction is acknowledged to its controller only after JetStream
// stored it, cumulatively and in order (scpbridge.AckTracker): the
// controller keeps everything unacknowledged in its log and sends it again
// after a reconnect. Each event is published with Nats-Msg-Id =
// <serial>.<boot epoch>.<seq>, so a repeat inside the duplicate window is
// stored once. When a publish fails or times out (NATS down, JetStream not
// ready), the driver does not acknowledge, keeps the session open and
// republishes the same messages, in order, with backoff, once NATS is
// back; nothing is dropped inside the driver. Meanwhile new sessions are
// refused (reject unavailable) and /readyz reports 503, so that the load
// balancer sends controllers to a driver that can store their events.
//
// # Sessions
//
// Each session has one read loop goroutine. At most one writer goroutine
// at a time owns its socket writes: it starts when something is queued
// and stops when the queue is empty, so an idle session holds one
// goroutine, no write buffer (pooled) and no read buffer (it waits for its
// socket to become readable before it takes one from a pool). The writer
// writes a bounded queue of encoded frames (a full queue closes the
// controller as a slow consumer, the reader never blocks on it) and the
// newest cumulative ack, coalesced while the controller is sending a
// backlog, with a write deadline on every write; one loop per driver pings
// the sessions that wrote nothing for a heartbeat interval. A session's
// in-flight transactions are bounded by Options.MaxInflightPerSession (the
// read loop stops reading that socket while the window is full) and the
// driver's by Options.MaxInflightTotal, whose tokens go to waiting read
// loops in batches (budget.go). Events are published on the core
// connection, each with the reply subject of a slot of a fixed table, and
// their PubAcks come back on one wildcard subscription (publisher.go): no
// goroutine, future, timer or map entry per message; a publish that times
// out or is cut off by a disconnect is sent again with its message id.
// Presence work runs on a few goroutines per driver, whatever the number of
// sessions starting or ending at once.
//
// # Ownership
//
// A session that completes its handshake writes its serial's key in the
// scp_sessions bucket (SessionRecord) and publishes an online presence
// event; when it ends it deletes the key only if it is still its own
// revision and publishes an offline event with the close reason. One
// session owns a serial at a time: a second session of the same serial on
// this driver closes the first (taken_over), and every driver watches
// scp_sessions with one watcher and closes its local session when a newer
// session elsewhere wrote the key.
//
// # Admission
//
// Before its welcome a hello passes, in order: the client certificate
// (Options.RequireCertSerial), the allow list (Options.Admit), the shared
// secret (Options.CheckSecret), the session cap (Options.MaxSessions,
// reject busy) and what scp_identity remembers of the serial
// (identity.go): in verify-if-given mode a session without a certificate
// is refused for a serial that presented one before, and without an allow
// list the presence of serials never seen before is paced
// (Options.UnknownSerialRate). Without client certificates (or secrets)
// anyone can use any serial and take its session over; every takeover is
// logged at warn with both remote addresses and counted.
//
// # Operations
//
// Drain releases controllers gradually (Options.DrainRate per second) after
// their in-flight events are stored and acknowledged; Handler serves
// /healthz, /readyz and /stats; the NATS micro service scpgate-driver
// reports the driver's id, controller port and Stats, and its "sessions"
// endpoint lists the serials held. Every close and rejection has a typed
// reason (scpgate.CloseReason, scpbridge.RejectReason), is logged with the
// session's serial, remote address and session id, and is counted in Stats.
//
// Command delivery is its own package (internal/delivery), wired in
// commands.go: the driver tells it of session start and end and of
// CommandStatus frames from the read loop, and it sees a session only as
// delivery.Session (serial, id, done, logger, a non-blocking send).
//
// # Where things live
//
// driver.go (Driver, Start, accept, register, Close), options.go,
// session.go (the session's state, grouped by owner, and its end),
// handshake.go, readloop.go, writer.go (the send queue, the writer,
// flush), ack.go (ack coalescing), heartbeat.go, inflight.go (a session's
// unconfirmed transactions), publish.go (from the read loop to the
// publisher and back), publisher.go, puback.go, budget.go, retry.go,
// outage.go, readbuf*.go, event*.go (the event document), presence.go and
// identity.go (scp_sessions, presence events, scp_identity), admit.go,
// drain.go and shed.go, service.go (micro service, HTTP handler),
// stats.go, commands.go (wires internal/delivery, command delivery).
package driver
