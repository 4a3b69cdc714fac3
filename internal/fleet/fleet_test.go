package fleet_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/fleet"
	"github.com/scpgate/scpgate/internal/natstest"
)

// TestDrivers runs two services under the drivers' micro service name,
// each with a stats handler as a driver has, and finds both with their
// metadata and statistics, sorted by id.
func TestDrivers(t *testing.T) {
	s := natstest.RunServer(t)
	nc := natstest.Connect(t, s)
	ctx := context.Background()

	if got, err := fleet.Drivers(ctx, nc, 200*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("no drivers: got %v, %v, want none", got, err)
	}
	for _, id := range []string{"d2", "d1"} {
		stats := driver.Stats{ID: id, Sessions: len(id) * 10, Inflight: 3, EventsReceived: 42}
		snc := natstest.Connect(t, s)
		svc, err := micro.AddService(snc, micro.Config{
			Name: driver.ServiceName, Version: "1.0.0",
			Metadata:     map[string]string{"id": id, "controller_addr": "127.0.0.1:3001", "sessions_subject": "scpgate.driver." + id + ".sessions"},
			StatsHandler: func(*micro.Endpoint) any { return stats },
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.AddEndpoint("sessions", micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte("[]")) }),
			micro.WithEndpointSubject("scpgate.driver."+id+".sessions")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
		// The server has the service's subscriptions before anyone asks.
		if err := snc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := fleet.Drivers(ctx, nc, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "d1" || got[1].ID != "d2" {
		b, _ := json.Marshal(got)
		t.Fatalf("got %s, want d1 and d2 in that order", b)
	}
	for _, d := range got {
		if !d.HasStats || d.Stats.Sessions != len(d.ID)*10 || d.Stats.EventsReceived != 42 {
			t.Errorf("%s: stats %+v (has %v), want the driver's", d.ID, d.Stats, d.HasStats)
		}
		if d.ControllerAddr != "127.0.0.1:3001" || d.SessionsSubject != "scpgate.driver."+d.ID+".sessions" || d.Instance == "" {
			t.Errorf("%s: got %+v, want its metadata and instance", d.ID, d)
		}
		if d.Started.IsZero() {
			t.Errorf("%s: no start time", d.ID)
		}
	}
}
