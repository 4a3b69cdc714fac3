package driver_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/sim"
)

// TestCommandFleet: many controllers, commands submitted concurrently, a
// random share refused by the controllers. Every command ends in one
// result, ok or nak as the controller answered, each controller receives
// its commands in queue order, and every queue drains.
func TestCommandFleet(t *testing.T) {
	w := newCmdWorld(t)
	d := w.startDriver("d1", func(o *driver.Options) { o.CommandBusyRetry = 20 * time.Millisecond })
	const count, per = 30, 5
	tmpl := simConfig(d.Addr().String(), "")
	tmpl.NakRate = 0.2
	tmpl.CommandLatency = 5 * time.Millisecond
	f := sim.NewFleet(sim.FleetConfig{Controller: tmpl, Count: count, Ramp: 1000, SerialPrefix: "CF"})
	runFleet(t, f)
	waitSessions(t, d, count)

	ids := make([][]string, count)
	var wg sync.WaitGroup
	for i, c := range f.Controllers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range per {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := w.svc.Submit(ctx, c.Serial(), unlock(uint16(1+k%4)))
				cancel()
				if err != nil {
					t.Errorf("submit to %s: %v", c.Serial(), err)
					return
				}
				ids[i] = append(ids[i], resp.ID)
			}
		}()
	}
	wg.Wait()

	var ok, nak uint64
	for i, c := range f.Controllers() {
		res := w.waitFinal(20*time.Second, ids[i]...)
		var want []uint32
		for _, id := range ids[i] {
			switch r := res[id]; r.Status {
			case scpgate.StatusOK:
				ok++
			case scpgate.StatusNAK:
				nak++
				if r.Reason != "content_error" {
					t.Errorf("%s: nak reason %q, want the simulated content_error (busy is retried)", id, r.Reason)
				}
			default:
				t.Errorf("%s: got %+v, want ok or nak", id, r)
			}
			want = append(want, uint32(res[id].Seq))
		}
		// A busy command is sent again: count each tag once, first time.
		var got []uint32
		for _, tag := range tagsOf(c) {
			if !slices.Contains(got, tag) {
				got = append(got, tag)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s received %v, want %v", c.Serial(), got, want)
		}
		w.waitDrained(c.Serial())
	}
	rep := f.Report()
	cs := d.CommandStats()
	if ok != rep.CommandsOK || nak+cs.BusyRetries != rep.CommandsNAK || nak == 0 {
		t.Errorf("results %d ok, %d nak, %d busy retries; controllers answered %d ok, %d nak", ok, nak, cs.BusyRetries, rep.CommandsOK, rep.CommandsNAK)
	}
	if cs.OK != ok || cs.NAK != nak || cs.Sent != count*per+cs.BusyRetries {
		t.Errorf("command stats %+v, want %d sent, %d ok, %d nak", cs, count*per+cs.BusyRetries, ok, nak)
	}
}
