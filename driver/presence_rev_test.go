package driver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/natstest"
)

// TestPresenceSessionRev: presence events carry the scp_sessions revision
// of their session's claim, so that the session that took a controller
// over orders after the one it replaced, whatever the drivers' clocks.
func TestPresenceSessionRev(t *testing.T) {
	e := newEnv(t)
	d1 := e.startDriver("d1", nil)
	d2 := e.startDriver("d2", nil)
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, "scp_sessions")
	if err != nil {
		t.Fatalf("bucket: %v", err)
	}

	r1 := dialRaw(t, d1.Addr().String())
	r1.hello("PR1", 1)
	first := waitSession(t, d1, "PR1")
	waitClaim(t, e, "PR1", first.Session)
	r2 := dialRaw(t, d2.Addr().String())
	r2.hello("PR1", 1)
	second := waitSession(t, d2, "PR1")
	var claim uint64
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		ent, err := kv.Get(ctx, "PR1")
		if err != nil {
			return err
		}
		if !containsStr(string(ent.Value()), second.Session) {
			return fmt.Errorf("scp_sessions PR1 = %s, want session %s", ent.Value(), second.Session)
		}
		claim = ent.Revision()
		return nil
	})
	if _, err := r1.waitClosed(5 * time.Second); err != nil {
		t.Fatalf("first session: %v", err)
	}
	r2.conn.Close()

	byKey := map[string]scpgate.Event{}
	natstest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		clear(byKey)
		for _, ev := range presenceOf(readEvents(t, e.js), "PR1") {
			byKey[ev.Presence.Session+"/"+ev.Code] = ev
		}
		if len(byKey) != 4 {
			return fmt.Errorf("%d presence events of PR1, want 4", len(byKey))
		}
		return nil
	})
	rev := func(session, code string) uint64 {
		ev, ok := byKey[session+"/"+code]
		if !ok {
			t.Fatalf("no %s event of session %s", code, session)
		}
		return ev.Presence.SessionRev
	}
	on1, off1 := rev(first.Session, "online"), rev(first.Session, "offline")
	on2, off2 := rev(second.Session, "online"), rev(second.Session, "offline")
	if on1 == 0 || on1 != off1 {
		t.Errorf("first session: online revision %d, offline %d; want the same, not 0", on1, off1)
	}
	if on2 != claim || off2 != claim {
		t.Errorf("second session: online revision %d, offline %d; want its scp_sessions revision %d", on2, off2, claim)
	}
	if on2 <= on1 {
		t.Errorf("the session that took over has revision %d, not above the first one's %d", on2, on1)
	}
}
