package sim

import (
	"errors"
	"fmt"
	"time"

	sb "github.com/scpgate/scpgate/scpbridge"
)

// answer is a command status waiting for its latency, with what the
// command does once answered OK.
type answer struct {
	due    time.Time
	status sb.CommandStatus
	effect effect
}

// effect is the part of a command its effect needs (Command itself holds
// reused slices).
type effect struct {
	code    sb.CommandCode
	door    uint16
	seconds uint16
	mode    sb.DoorMode
	output  uint16
	action  sb.OutputAction
	timeMS  int64
}

// command decides the answer to the command just received, records it, and
// queues the answer for CommandLatency. A tag already carried out in this
// boot epoch (the host sends a command again when a session ended before
// its answer arrived) is answered as before without acting again.
func (l *link) command(now time.Time) {
	c := l.c
	cmd := &l.sess.Command
	c.mu.Lock()
	prev := c.seenLocked(cmd.Tag)
	dup := prev != nil
	replay := dup && prev.done
	var detail string
	if replay {
		detail = prev.detail
	}
	if dup {
		c.st.DuplicateCommands++
	}
	c.mu.Unlock()
	st, nak := sb.StatusOK, sb.NakNone
	if !replay {
		st, nak, detail = c.decide(cmd)
	}
	c.mu.Lock()
	c.recordLocked(ReceivedCommand{
		Time: now, Tag: cmd.Tag, Code: cmd.Code, Door: cmd.Door, Output: cmd.Output,
		Status: st, NakReason: nak, Detail: detail, Duplicate: dup,
	})
	drop := !dup && c.dropped < c.cfg.DropAnswers
	if drop {
		c.dropped++
	}
	c.mu.Unlock()
	if drop {
		c.log.Debug().Uint32("tag", cmd.Tag).Msg("command left unanswered (DropAnswers)")
		return
	}
	c.log.Debug().Uint32("tag", cmd.Tag).Stringer("code", cmd.Code).Stringer("status", st).Stringer("nak", nak).
		Bool("duplicate", dup).Msg("command")
	a := answer{
		due:    now.Add(c.cfg.CommandLatency),
		status: sb.CommandStatus{Tag: cmd.Tag, Status: st, NakReason: nak, Detail: detail},
		effect: effect{code: cmd.Code, door: cmd.Door, seconds: cmd.Seconds, mode: cmd.Mode, output: cmd.Output, action: cmd.Action, timeMS: cmd.TimeMS},
	}
	if replay {
		a.effect = effect{}
	}
	l.answers = append(l.answers, a)
}

// refuse answers a command whose body did not decode: NAK bad_header when
// it was cut short, content_error when a field was invalid.
func (l *link) refuse(err error, now time.Time) {
	c := l.c
	cmd := &l.sess.Command
	nak := sb.NakContentError
	if errors.Is(err, sb.ErrTruncated) {
		nak = sb.NakBadHeader
	}
	detail := err.Error()
	if len(detail) > sb.MaxTextLen {
		detail = detail[:sb.MaxTextLen]
	}
	c.mu.Lock()
	c.recordLocked(ReceivedCommand{Time: now, Tag: cmd.Tag, Code: cmd.Code, Status: sb.StatusNAK, NakReason: nak, Detail: detail})
	c.mu.Unlock()
	l.answers = append(l.answers, answer{
		due:    now.Add(c.cfg.CommandLatency),
		status: sb.CommandStatus{Tag: cmd.Tag, Status: sb.StatusNAK, NakReason: nak, Detail: detail},
	})
}

// decide returns the controller's answer to cmd: NAK unknown_command for
// a code it does not know, NAK out_of_range for a door or output it does
// not have, a random NAK at NakRate, else OK (with the detail of
// id_request and tran_status).
func (c *Controller) decide(cmd *sb.Command) (sb.Status, sb.NakReason, string) {
	if !cmd.Code.Valid() {
		return sb.StatusNAK, sb.NakUnknownCommand, ""
	}
	doorOK := func(d uint16) bool { return d >= 1 && int(d) <= c.cfg.Doors }
	switch cmd.Code {
	case sb.CmdMomentaryUnlock, sb.CmdDoorMode:
		if !doorOK(cmd.Door) {
			return sb.StatusNAK, sb.NakOutOfRange, fmt.Sprintf("door %d not in 1..%d", cmd.Door, c.cfg.Doors)
		}
	case sb.CmdOutput:
		if cmd.Output < 1 || int(cmd.Output) > c.cfg.Outputs {
			return sb.StatusNAK, sb.NakOutOfRange, fmt.Sprintf("output %d not in 1..%d", cmd.Output, c.cfg.Outputs)
		}
	case sb.CmdAccessLevel:
		for _, d := range cmd.Doors {
			if !doorOK(d) {
				return sb.StatusNAK, sb.NakOutOfRange, fmt.Sprintf("door %d not in 1..%d", d, c.cfg.Doors)
			}
		}
	}
	if c.cfg.NakRate > 0 && c.rng.Float64() < c.cfg.NakRate {
		if c.rng.IntN(4) == 0 {
			return sb.StatusNAK, sb.NakContentError, "simulated"
		}
		return sb.StatusNAK, sb.NakBusy, "simulated"
	}
	switch cmd.Code {
	case sb.CmdIDRequest:
		return sb.StatusOK, sb.NakNone, fmt.Sprintf("model=%s firmware=%s serial=%s", c.cfg.Model, c.cfg.Firmware, c.cfg.Serial)
	case sb.CmdTranStatus:
		c.mu.Lock()
		s := c.txl.status()
		epoch := c.epoch
		c.mu.Unlock()
		return sb.StatusOK, sb.NakNone, fmt.Sprintf("capacity=%d oldest=%d last_logged=%d last_acked=%d boot_epoch=%d", s.Capacity, s.Oldest, s.LastLogged, s.LastAcked, epoch)
	}
	return sb.StatusOK, sb.NakNone, ""
}

// dueAnswers queues the answers whose latency has passed and applies the
// effects of those answered OK.
func (l *link) dueAnswers(now time.Time) {
	n := 0
	for n < len(l.answers) && !l.answers[n].due.After(now) {
		a := l.answers[n]
		n++
		if err := l.queue(&a.status); err != nil {
			l.c.log.Warn().Err(err).Uint32("tag", a.status.Tag).Msg("command answer not encodable")
			continue
		}
		l.c.mu.Lock()
		if a.status.Status == sb.StatusOK {
			l.c.st.CommandsOK++
			if l.c.epoch == l.epoch {
				l.c.completedLocked(a.status.Tag, a.status.Detail)
			}
		} else {
			l.c.st.CommandsNAK++
		}
		l.c.mu.Unlock()
		if a.status.Status == sb.StatusOK {
			l.apply(a.effect, now)
		}
	}
	l.answers = l.answers[:copy(l.answers, l.answers[n:])]
}

// apply carries out an accepted command: the transactions a real panel
// would log for it.
func (l *link) apply(e effect, now time.Time) {
	c := l.c
	door := func(code uint8) entry { return entry{src: sb.SourceDoor, num: e.door, typ: sb.TranDoor, code: code} }
	switch e.code {
	case sb.CmdSetTime:
		c.clockOffsetMS.Store(e.timeMS - now.UnixMilli())
		c.logNow(entry{src: sb.SourceController, typ: sb.TranSystem, code: sb.SystemTimeSet})
	case sb.CmdMomentaryUnlock:
		strike := c.cfg.StrikeTime
		if e.seconds > 0 {
			strike = time.Duration(e.seconds) * time.Second
		}
		c.mix.doorCycle(now, e.door, strike, 0.7, false)
		c.pendingFollow.Store(int32(len(c.mix.follow)))
	case sb.CmdDoorMode:
		switch e.mode {
		case sb.ModeUnlocked:
			c.logNow(door(sb.DoorUnlocked))
		case sb.ModeLocked, sb.ModeDisabled:
			c.logNow(door(sb.DoorLocked))
		}
	case sb.CmdOutput:
		codes := [...]uint8{sb.ActionOff: sb.OutputOff, sb.ActionOn: sb.OutputOn, sb.ActionPulse: sb.OutputPulse}
		c.logNow(entry{src: sb.SourceOutput, num: e.output, typ: sb.TranOutput, code: codes[e.action]})
	case sb.CmdReset:
		c.logNow(entry{src: sb.SourceController, typ: sb.TranSystem, code: sb.SystemReset})
		l.resetNow = true
	}
}
