package sim

import (
	"math/rand/v2"
	"slices"
	"time"

	sb "github.com/scpgate/scpgate/scpbridge"
)

// Card numbers and facility codes of the simulated card population.
const (
	facilityCode = 42
	cardBase     = 100_000
	cardPool     = 5_000
)

var deniedCodes = [...]uint8{sb.AccessDeniedBadFacility, sb.AccessDeniedNotInFile, sb.AccessDeniedExpired, sb.AccessDeniedBadPIN, sb.AccessDeniedAntiPassback, sb.AccessDeniedNoAccess}

// scheduled is a transaction due at a given time: the later steps of a
// door cycle, an input returning to normal, and so on.
type scheduled struct {
	due time.Time
	e   entry
}

// mixer produces the random event mix and the timed follow-ups of
// activities. It is owned by the goroutine running Controller.Run.
type mixer struct {
	cfg    *Config
	rng    *rand.Rand
	next   time.Time   // next random activity; zero when the rate is 0
	rate   float64     // rate next was computed with
	follow []scheduled // sorted by due
}

// reschedule sets the time of the next random activity for rate. When the
// rate drops to 0 the activities under way complete at once: their
// follow-ups become due now, so that a fleet being drained has nothing
// left to log.
func (m *mixer) reschedule(now time.Time, rate float64) {
	stopping := m.rate > 0 && rate <= 0
	m.rate = rate
	if rate <= 0 {
		m.next = time.Time{}
		if stopping {
			for i := range m.follow {
				m.follow[i].due = now
				m.follow[i].e.timeMS = now.UnixMilli()
			}
		}
		return
	}
	m.next = now.Add(m.interval())
}

// transactionsPerActivity is the mean number of transactions one random
// activity logs (weights and branch probabilities of activity and
// doorCycle: 0.54×4.836 + 0.13 + 0.25×2 + 0.06×2 + 0.02×2 ≈ 3.40).
const transactionsPerActivity = 3.40

// interval draws the wait to the next activity: activities form a Poisson
// process of rate/transactionsPerActivity per second, so that transactions
// are logged at rate on average, from the first second on.
func (m *mixer) interval() time.Duration {
	return time.Duration(m.rng.ExpFloat64() * transactionsPerActivity / m.rate * float64(time.Second))
}

// wake returns when the mixer next has something to log (zero: never).
func (m *mixer) wake() time.Time {
	w := m.next
	if len(m.follow) > 0 && (w.IsZero() || m.follow[0].due.Before(w)) {
		w = m.follow[0].due
	}
	return w
}

// due calls emit for every transaction due at or before now, oldest first,
// and schedules new activities. At most limit activities are started per
// call, so that a long stall does not turn into a burst.
func (m *mixer) due(now time.Time, emit func(entry)) {
	const limit = 1000
	for i := 0; !m.next.IsZero() && !m.next.After(now) && i < limit; i++ {
		at := m.next
		m.activity(at)
		m.next = at.Add(m.interval())
	}
	if !m.next.IsZero() && !m.next.After(now) {
		m.next = now.Add(m.interval()) // skip what a stall missed
	}
	n := 0
	for n < len(m.follow) && !m.follow[n].due.After(now) {
		emit(m.follow[n].e)
		n++
	}
	m.follow = m.follow[:copy(m.follow, m.follow[n:])]
	if len(m.follow) == 0 && cap(m.follow) > 64 {
		m.follow = nil
	}
}

// at schedules e at t.
func (m *mixer) at(t time.Time, e entry) {
	e.timeMS = t.UnixMilli()
	i, _ := slices.BinarySearchFunc(m.follow, t, func(s scheduled, t time.Time) int {
		if s.due.After(t) {
			return 1
		}
		return -1 // equal times keep their scheduling order
	})
	m.follow = slices.Insert(m.follow, i, scheduled{due: t, e: e})
}

func (m *mixer) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(m.rng.Int64N(int64(hi-lo)+1))
}

// activity schedules one random activity starting at t. Weights per thousand: card granted 540,
// denied 130, input 250, output 60, forced open 10, tamper 5, power 5.
func (m *mixer) activity(t time.Time) {
	r := m.rng.IntN(1000)
	switch {
	case r < 540:
		door := uint16(1 + m.rng.IntN(m.cfg.Doors))
		card := uint64(cardBase + m.rng.IntN(cardPool))
		m.at(t, entry{src: sb.SourceReader, num: door, typ: sb.TranAccess, code: sb.AccessGranted, card: card, aux: facilityCode})
		m.doorCycle(t.Add(50*time.Millisecond), door, m.cfg.StrikeTime, 0.9, true)
	case r < 670:
		door := uint16(1 + m.rng.IntN(m.cfg.Doors))
		code := deniedCodes[m.rng.IntN(len(deniedCodes))]
		fac := uint32(facilityCode)
		if code == sb.AccessDeniedBadFacility {
			fac = uint32(1 + m.rng.IntN(40))
		}
		m.at(t, entry{src: sb.SourceReader, num: door, typ: sb.TranAccess, code: code, card: uint64(cardBase + m.rng.IntN(2*cardPool)), aux: fac})
	case r < 920:
		in := uint16(1 + m.rng.IntN(m.cfg.Inputs))
		code := sb.InputAlarm
		if f := m.rng.IntN(100); f < 3 {
			code = sb.InputFaultOpen
		} else if f < 5 {
			code = sb.InputFaultShort
		}
		m.at(t, entry{src: sb.SourceInput, num: in, typ: sb.TranInput, code: code})
		m.at(t.Add(m.between(2*time.Second, 30*time.Second)), entry{src: sb.SourceInput, num: in, typ: sb.TranInput, code: sb.InputNormal})
	case r < 980:
		out := uint16(1 + m.rng.IntN(m.cfg.Outputs))
		m.at(t, entry{src: sb.SourceOutput, num: out, typ: sb.TranOutput, code: sb.OutputOn})
		m.at(t.Add(m.between(time.Second, 10*time.Second)), entry{src: sb.SourceOutput, num: out, typ: sb.TranOutput, code: sb.OutputOff})
	case r < 990:
		door := uint16(1 + m.rng.IntN(m.cfg.Doors))
		m.at(t, entry{src: sb.SourceDoor, num: door, typ: sb.TranDoor, code: sb.DoorForcedOpen})
		m.at(t.Add(m.between(2*time.Second, 10*time.Second)), entry{src: sb.SourceDoor, num: door, typ: sb.TranDoor, code: sb.DoorSecure})
	case r < 995:
		m.at(t, entry{src: sb.SourceController, typ: sb.TranTamper, code: sb.TamperAlarm})
		m.at(t.Add(m.between(5*time.Second, 60*time.Second)), entry{src: sb.SourceController, typ: sb.TranTamper, code: sb.TamperNormal})
	default:
		fail, restore := sb.PowerFail, sb.PowerRestore
		if m.rng.IntN(2) == 0 {
			fail, restore = sb.PowerBatteryLow, sb.PowerBatteryNormal
		}
		m.at(t, entry{src: sb.SourceController, typ: sb.TranPower, code: fail})
		m.at(t.Add(m.between(time.Second, 30*time.Second)), entry{src: sb.SourceController, typ: sb.TranPower, code: restore})
	}
}

// doorCycle schedules what a door does when its strike is released at t
// for strike: unlocked; opened with probability pOpen; locked when the
// strike time ends; secure when the door closes again. With heldOpen, a
// small share of opened doors stay open past the strike time and raise
// held-open alarms before closing.
func (m *mixer) doorCycle(t time.Time, door uint16, strike time.Duration, pOpen float64, heldOpen bool) {
	d := func(code uint8) entry { return entry{src: sb.SourceDoor, num: door, typ: sb.TranDoor, code: code} }
	m.at(t, d(sb.DoorUnlocked))
	if m.rng.Float64() >= pOpen {
		m.at(t.Add(strike), d(sb.DoorLocked))
		return
	}
	opened := t.Add(strike/10 + time.Duration(m.rng.Int64N(int64(strike*4/10)+1)))
	m.at(opened, d(sb.DoorOpened))
	m.at(t.Add(strike), d(sb.DoorLocked))
	if heldOpen && m.rng.IntN(100) < 2 {
		m.at(opened.Add(10*time.Second), d(sb.DoorHeldOpenPrealarm))
		m.at(opened.Add(15*time.Second), d(sb.DoorHeldOpen))
		m.at(opened.Add(m.between(20*time.Second, 60*time.Second)), d(sb.DoorSecure))
		return
	}
	m.at(t.Add(strike+strike/20+time.Duration(m.rng.Int64N(int64(strike/2)+1))), d(sb.DoorSecure))
}

// patternLen is the length of the deterministic mix of Generate.
const patternLen = 10

// patterned returns transaction number i of the deterministic mix used by
// Controller.Generate: a granted read with its door cycle, a denied read,
// an input alarm and its return to normal, an output on and off. Sources
// rotate over the controller's doors, inputs and outputs.
func patterned(cfg *Config, i uint64, now time.Time) entry {
	round := i / patternLen
	door := uint16(round%uint64(cfg.Doors)) + 1
	in := uint16(round%uint64(cfg.Inputs)) + 1
	out := uint16(round%uint64(cfg.Outputs)) + 1
	card := cardBase + round%cardPool
	e := entry{timeMS: now.UnixMilli()}
	dr := func(code uint8) { e.src, e.num, e.typ, e.code = sb.SourceDoor, door, sb.TranDoor, code }
	switch i % patternLen {
	case 0:
		e.src, e.num, e.typ, e.code, e.card, e.aux = sb.SourceReader, door, sb.TranAccess, sb.AccessGranted, card, facilityCode
	case 1:
		dr(sb.DoorUnlocked)
	case 2:
		dr(sb.DoorOpened)
	case 3:
		dr(sb.DoorLocked)
	case 4:
		dr(sb.DoorSecure)
	case 5:
		e.src, e.num, e.typ, e.code, e.card, e.aux = sb.SourceReader, door, sb.TranAccess, sb.AccessDeniedNotInFile, card+cardPool, facilityCode
	case 6:
		e.src, e.num, e.typ, e.code = sb.SourceInput, in, sb.TranInput, sb.InputAlarm
	case 7:
		e.src, e.num, e.typ, e.code = sb.SourceInput, in, sb.TranInput, sb.InputNormal
	case 8:
		e.src, e.num, e.typ, e.code = sb.SourceOutput, out, sb.TranOutput, sb.OutputOn
	default:
		e.src, e.num, e.typ, e.code = sb.SourceOutput, out, sb.TranOutput, sb.OutputOff
	}
	return e
}
