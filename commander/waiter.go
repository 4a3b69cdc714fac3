package commander

import (
	"encoding/json"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/streams"
)

// maxEarly bounds the results of one controller a waiter keeps while its
// command's id is not yet known (between publishing the command and its
// PubAck). Past it a result may be missed; the waiter then learns the
// outcome from the status record when its wait ends.
const maxEarly = 64

// waiter waits for the result of one command.
type waiter struct {
	serial string
	ch     chan scpgate.Result // capacity 1; receives the result once

	// guarded by waiters.mu
	id    string      // "" until the PubAck names the command
	early []*nats.Msg // results of serial seen while id was ""
	done  bool        // result delivered
}

// waiters routes results from the shared subscription to the submissions
// waiting for them, by controller serial and then command id.
type waiters struct {
	mu       sync.Mutex
	bySerial map[string]map[*waiter]struct{}
}

func newWaiters() *waiters {
	return &waiters{bySerial: make(map[string]map[*waiter]struct{})}
}

// add registers a waiter for a command of serial about to be published.
// Results of serial are kept from now on, so one published before the
// PubAck arrives is not missed.
func (ws *waiters) add(serial string) *waiter {
	w := &waiter{serial: serial, ch: make(chan scpgate.Result, 1)}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	m := ws.bySerial[serial]
	if m == nil {
		m = make(map[*waiter]struct{})
		ws.bySerial[serial] = m
	}
	m[w] = struct{}{}
	return w
}

// remove unregisters w.
func (ws *waiters) remove(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	m := ws.bySerial[w.serial]
	delete(m, w)
	if len(m) == 0 {
		delete(ws.bySerial, w.serial)
	}
	w.early = nil
}

// setID names the command w waits for and delivers a result of it that
// arrived early.
func (ws *waiters) setID(w *waiter, id string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w.id = id
	for _, m := range w.early {
		if resultID(m) == id {
			w.deliver(m)
		}
	}
	w.early = nil
}

// dispatch is the handler of the shared result subscription.
func (ws *waiters) dispatch(m *nats.Msg) {
	serial, ok := streams.SerialFromSubject(m.Subject)
	if !ok {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	waiting := ws.bySerial[serial]
	if len(waiting) == 0 {
		return
	}
	id := resultID(m)
	for w := range waiting {
		switch {
		case w.id == "" && len(w.early) < maxEarly:
			w.early = append(w.early, m)
		case w.id != "" && w.id == id:
			w.deliver(m)
		}
	}
}

// deliver decodes m and hands it to w once. Call with waiters.mu held.
func (w *waiter) deliver(m *nats.Msg) {
	if w.done {
		return
	}
	var r scpgate.Result
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return // not a result; the status record will tell
	}
	w.done = true
	w.ch <- r
}

// resultID returns the command id of a result message: its Nats-Msg-Id,
// or the id in its body when the header is missing.
func resultID(m *nats.Msg) string {
	if id := m.Header.Get(nats.MsgIdHdr); id != "" {
		return id
	}
	var r struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(m.Data, &r)
	return r.ID
}
