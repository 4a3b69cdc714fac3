package driver

import (
	"context"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/scpbridge"
)

// hooks is the seam for command delivery (driver/commands.go). A Driver
// has exactly one, installed by New (commandHooks). Every
// method must return quickly: sessionStart and sessionEnd run on the
// session's goroutine, status on its read loop.
//
// What a hook may use on a session: s.serial, s.id, s.log, s.ctx (canceled
// when the session ends) and s.send, which queues a frame on the session's
// writer without blocking (it fails with errSessionClosed or, when the
// queue is full, closes the session as a slow consumer and fails with
// errSlowConsumer). The queue holds Options.SendQueue frames until the
// writer takes them (it takes all at once, typically within one socket
// write), so keep the frames queued in one burst well below that. On the
// driver: d.nc, d.js, d.handles (after Start), d.bgCtx, d.bgWG and d.log.
type hooks interface {
	// start runs once in Start, after the streams are ensured and before
	// the first connection is accepted; ctx ends when the driver closes.
	start(ctx context.Context) error
	// sessionStart runs when s owns its serial on this driver, after the
	// welcome was queued and before its first transaction is read.
	sessionStart(s *session)
	// status runs on the read loop for every FrameCommandStatus; st is
	// reused by the next frame, so copy what is kept.
	status(s *session, st *scpbridge.CommandStatus)
	// sessionEnd runs once after an established session's connection is
	// closed.
	sessionEnd(s *session, reason scpgate.CloseReason)
	// awaitingAnswers reports whether commands sent to s wait for their
	// status; a draining session stays open for them (bounded by
	// Options.DrainAnswerWait). Once none waits any more, the hooks call
	// s.checkDrained.
	awaitingAnswers(s *session) bool
}
