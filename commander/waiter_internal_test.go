package commander

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/scpgate/scpgate"
)

func resultMsg(t *testing.T, serial, id string, withHeader bool) *nats.Msg {
	t.Helper()
	b, err := json.Marshal(scpgate.Result{V: 1, ID: id, Controller: serial, Status: scpgate.StatusOK})
	if err != nil {
		t.Fatalf("encode result: %v", err)
	}
	m := &nats.Msg{Subject: "scp.res." + serial, Data: b, Header: nats.Header{}}
	if withHeader {
		m.Header.Set(nats.MsgIdHdr, id)
	}
	return m
}

func TestWaiterRoutes(t *testing.T) {
	ws := newWaiters()
	w := ws.add("S1")
	other := ws.add("S2")

	// A result that beats the PubAck is kept and delivered once the id
	// is known; results of other commands are not.
	ws.dispatch(resultMsg(t, "S1", "S1.6", true))
	ws.dispatch(resultMsg(t, "S1", "S1.7", false)) // id from the body
	ws.dispatch(resultMsg(t, "S2", "S2.7", true))
	ws.setID(w, "S1.7")
	select {
	case r := <-w.ch:
		if r.ID != "S1.7" {
			t.Fatalf("got result %s, want S1.7", r.ID)
		}
	default:
		t.Fatalf("early result not delivered")
	}
	// A repeat (the driver re-published) is not delivered twice.
	ws.dispatch(resultMsg(t, "S1", "S1.7", true))
	if len(w.ch) != 0 {
		t.Fatalf("got a second delivery, want one")
	}

	ws.setID(other, "S2.8")
	ws.dispatch(resultMsg(t, "S2", "S2.8", true))
	if r := <-other.ch; r.ID != "S2.8" {
		t.Fatalf("got result %s, want S2.8", r.ID)
	}

	// The early buffer is bounded.
	w3 := ws.add("S3")
	for range 3 * maxEarly {
		ws.dispatch(resultMsg(t, "S3", "S3.1", true))
	}
	if n := len(w3.early); n != maxEarly {
		t.Fatalf("got %d early results kept, want %d", n, maxEarly)
	}

	for _, x := range []*waiter{w, other, w3} {
		ws.remove(x)
	}
	if len(ws.bySerial) != 0 {
		t.Fatalf("got %d serials after removing every waiter, want 0", len(ws.bySerial))
	}
	ws.dispatch(resultMsg(t, "S1", "S1.9", true)) // nobody waits: dropped
	ws.dispatch(&nats.Msg{Subject: "not.a.result"})
}
