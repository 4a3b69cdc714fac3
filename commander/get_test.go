package commander_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/internal/natstest"
)

func TestGetStatus(t *testing.T) {
	e := newEnv(t)
	r := e.submit("S1", map[string]any{"type": "id_request"})

	getRecord := func(id string) commands.Record {
		t.Helper()
		a := e.get("/v1/commands/" + id)
		if a.code != http.StatusOK {
			t.Fatalf("get %s: got %d %s, want 200", id, a.code, a.body)
		}
		var rec commands.Record
		a.decode(t, &rec)
		return rec
	}

	sent := time.Now().UTC()
	e.putRecord(commands.Record{ID: r.ID, Controller: "S1", Type: scpgate.CmdIDRequest, Status: scpgate.StatusSent,
		Seq: r.Seq, Created: r.Created, Expires: r.Expires, Sent: &sent, Driver: "d1"})
	if rec := getRecord(r.ID); rec.Status != scpgate.StatusSent || rec.Driver != "d1" || rec.Sent == nil {
		t.Fatalf("after the sent record: got %+v, want sent by d1", rec)
	}

	finished := sent.Add(time.Millisecond)
	e.putRecord(commands.Record{ID: r.ID, Controller: "S1", Type: scpgate.CmdIDRequest, Status: scpgate.StatusOK,
		Detail: "model X fw 1.2", Seq: r.Seq, Created: r.Created, Sent: &sent, Finished: &finished, Driver: "d1"})
	if err := e.h.Commands.DeleteMsg(e.ctx, r.Seq); err != nil {
		t.Fatalf("delete command: %v", err)
	}
	if rec := getRecord(r.ID); rec.Status != scpgate.StatusOK || rec.Detail != "model X fw 1.2" || rec.Finished == nil {
		t.Fatalf("after the final record: got %+v, want ok with the detail", rec)
	}

	// A command that waited past its expiry reads expired.
	x, err := e.svc.Submit(e.ctx, "S1", commander.SubmitRequest{Type: scpgate.CmdReset, TTL: "1s"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if rec := getRecord(x.ID); rec.Status != scpgate.StatusQueued {
		t.Fatalf("fresh command: got %s, want queued", rec.Status)
	}
	var rec commands.Record
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		rec = getRecord(x.ID)
		if rec.Status != scpgate.StatusExpired {
			return fmt.Errorf("got status %s, want expired", rec.Status)
		}
		return nil
	})

	notFound := []string{
		"S1.999",                       // no such sequence
		fmt.Sprintf("S2.%d", x.Seq),    // a sequence of another controller
		commands.ID("S1", r.Seq+10000), // never stored
	}
	for _, id := range notFound {
		a := e.get("/v1/commands/" + id)
		if _, code := a.apiError(t); a.code != http.StatusNotFound || code != "not_found" {
			t.Errorf("get %s: got %d %s, want 404 not_found", id, a.code, a.body)
		}
	}
	for _, id := range []string{"S1", "S1.0", "S1.x", "S%2A.1"} {
		a := e.get("/v1/commands/" + id)
		if _, code := a.apiError(t); a.code != http.StatusBadRequest || code != "bad_request" {
			t.Errorf("get %s: got %d %s, want 400 bad_request", id, a.code, a.body)
		}
	}
}

func TestControllers(t *testing.T) {
	e := newEnv(t)
	since := time.Date(2025, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, serial := range []string{"C3", "C1", "C2"} {
		b, _ := json.Marshal(map[string]any{"driver": "d1", "session": "s-" + serial, "remote": "10.0.0.1:5000",
			"since": since, "model": "EP4502", "firmware": "1.2.3"})
		if _, err := e.h.Sessions.Put(e.ctx, serial, b); err != nil {
			t.Fatalf("put session %s: %v", serial, err)
		}
	}
	if _, err := e.h.Sessions.Put(e.ctx, "C4", []byte(`{}`)); err != nil {
		t.Fatalf("put session C4: %v", err)
	}
	if err := e.h.Sessions.Delete(e.ctx, "C4"); err != nil { // went offline
		t.Fatalf("delete session C4: %v", err)
	}

	var list commander.ControllerList
	a := e.get("/v1/controllers")
	a.decode(t, &list)
	if a.code != http.StatusOK || len(list.Controllers) != 3 || list.Next != "" {
		t.Fatalf("list: got %d %s, want 200 with C1..C3", a.code, a.body)
	}
	want := commander.Controller{Serial: "C1", Online: true, Driver: "d1", Session: "s-C1", Remote: "10.0.0.1:5000",
		Since: since, Model: "EP4502", Firmware: "1.2.3"}
	if list.Controllers[0] != want || list.Controllers[2].Serial != "C3" {
		t.Fatalf("list: got %+v, want %+v first and sorted by serial", list.Controllers, want)
	}

	a = e.get("/v1/controllers?limit=2")
	a.decode(t, &list)
	if len(list.Controllers) != 2 || list.Next != "C2" {
		t.Fatalf("page 1: got %s, want C1, C2 and next C2", a.body)
	}
	a = e.get("/v1/controllers?limit=2&after=" + list.Next)
	list = commander.ControllerList{}
	a.decode(t, &list)
	if len(list.Controllers) != 1 || list.Controllers[0].Serial != "C3" || list.Next != "" {
		t.Fatalf("page 2: got %s, want C3 alone", a.body)
	}

	var c commander.Controller
	a = e.get("/v1/controllers/C2")
	a.decode(t, &c)
	if a.code != http.StatusOK || !c.Online || c.Session != "s-C2" {
		t.Fatalf("C2: got %d %s, want online", a.code, a.body)
	}
	for _, serial := range []string{"C4", "C9"} {
		a = e.get("/v1/controllers/" + serial)
		c = commander.Controller{}
		a.decode(t, &c)
		if a.code != http.StatusOK || c.Online || c.Serial != serial {
			t.Fatalf("%s: got %d %s, want offline", serial, a.code, a.body)
		}
	}
	for _, path := range []string{"/v1/controllers/C%2A", "/v1/controllers?limit=-1", "/v1/controllers?limit=x",
		"/v1/controllers?after=a.b", fmt.Sprintf("/v1/controllers?limit=%d", commander.MaxPageSize+1)} {
		a = e.get(path)
		if _, code := a.apiError(t); a.code != http.StatusBadRequest || code != "bad_request" {
			t.Errorf("%s: got %d %s, want 400 bad_request", path, a.code, a.body)
		}
	}
}
