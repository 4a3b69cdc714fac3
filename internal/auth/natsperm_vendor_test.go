package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/ingest"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/streams"
)

// vendorClients does, as the vendor user, what the official NATS clients
// do besides direct get (docs/events.md): a KV get and a stream get
// without direct get (a bucket or stream without allow_direct), a watch
// of scp_state, a filtered durable consumer (filter in the create
// subject), an ordered consumer with filter_subjects.
func vendorClients(ctx context.Context, t *testing.T, r *roleConn, kv jetstream.KeyValue) {
	t.Helper()
	for _, tc := range []struct{ stream, subject string }{
		{"KV_" + streams.StateBucket, "$KV." + streams.StateBucket + ".PERM1"},
		{streams.EventsStream, "scp.evt.PERM1.>"},
		{streams.ResultsStream, "scp.res.PERM1"},
	} {
		req, _ := json.Marshal(map[string]string{"last_by_subj": tc.subject})
		m, err := r.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+tc.stream, req)
		if err != nil {
			t.Errorf("stream get on %s as vendor: %v", tc.stream, err)
			continue
		}
		if strings.Contains(string(m.Data), `"error"`) || !strings.Contains(string(m.Data), `"message"`) {
			t.Errorf("stream get on %s as vendor: %s", tc.stream, m.Data)
		}
	}

	w, err := kv.Watch(ctx, "PERM1")
	if err != nil {
		t.Fatalf("watch scp_state as vendor: %v", err)
	}
	select {
	case e := <-w.Updates():
		if e == nil || e.Key() != "PERM1" {
			t.Errorf("watch scp_state as vendor: first update %v, want PERM1", e)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("watch scp_state as vendor: no update")
	}
	_ = w.Stop()

	filtered, err := r.js.CreateOrUpdateConsumer(ctx, streams.EventsStream, jetstream.ConsumerConfig{
		Durable: "vendor-presence", FilterSubject: "scp.evt.*.presence", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("filtered durable consumer as vendor: %v", err)
	}
	if msg, err := filtered.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Errorf("filtered durable consumer as vendor: %v", err)
	} else if err := msg.DoubleAck(ctx); err != nil {
		t.Errorf("ack on the filtered consumer as vendor: %v", err)
	}
	if err := r.js.DeleteConsumer(ctx, streams.EventsStream, "vendor-presence"); err != nil {
		t.Errorf("delete its own consumer as vendor: %v", err)
	}
	ordered, err := r.js.OrderedConsumer(ctx, streams.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"scp.evt.PERM1.presence", "scp.evt.PERM1.access"}})
	if err != nil {
		t.Fatalf("ordered consumer with filter_subjects as vendor: %v", err)
	}
	if _, err := ordered.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Errorf("ordered consumer with filter_subjects as vendor: %v", err)
	}
}

// vendorDenied tries ingest's consumer as the vendor user: every try is
// refused.
func vendorDenied(t *testing.T, r *roleConn) {
	t.Helper()
	ing := ingest.DefaultDurable
	for _, tc := range []struct{ what, subject string }{
		{"retarget ingest's consumer", "$JS.API.CONSUMER.CREATE." + streams.EventsStream + "." + ing + ".scp.evt.X.>"},
		{"create over ingest's consumer", "$JS.API.CONSUMER.CREATE." + streams.ResultsStream + "." + ing},
		{"delete ingest's consumer", "$JS.API.CONSUMER.DELETE." + streams.EventsStream + "." + ing},
		{"pull from ingest's consumer", "$JS.API.CONSUMER.MSG.NEXT." + streams.EventsStream + "." + ing},
		{"ack for ingest's consumer", "$JS.ACK." + streams.ResultsStream + "." + ing + ".1.1.1.0.0"},
	} {
		if err := r.nc.PublishRequest(tc.subject, r.nc.NewInbox(), []byte("{}")); err != nil {
			t.Fatalf("vendor: %s: %v", tc.what, err)
		}
		_ = r.nc.Flush()
		r.violation(t, "vendor: "+tc.what, tc.subject)
	}
}

// TestNATSInboxes: every role gets replies under its own inbox prefix
// (JetStream API, KV watch, ordered consumer) and may not subscribe to
// another role's inbox, nor to every inbox; a client that keeps the
// default _INBOX prefix gets no reply.
func TestNATSInboxes(t *testing.T) {
	s := permServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := connectAs(t, s, "driver")
	if _, err := streams.Ensure(ctx, admin.js, streams.DefaultConfig()); err != nil {
		t.Fatalf("ensure as driver: %v", err)
	}
	for _, role := range natsconn.Roles {
		r := connectAs(t, s, string(role))
		if _, err := r.js.AccountInfo(ctx); err != nil {
			t.Errorf("%s: JetStream request with inbox %s: %v", role, role.InboxPrefix(), err)
		}
		for _, other := range natsconn.Roles {
			if other == role {
				continue
			}
			subj := other.InboxPrefix() + ".>"
			if _, err := r.nc.SubscribeSync(subj); err != nil {
				t.Fatal(err)
			}
			_ = r.nc.Flush()
			r.violation(t, fmt.Sprintf("%s reads the inbox of %s", role, other), subj)
		}
		if _, err := r.nc.SubscribeSync("_INBOX.>"); err != nil {
			t.Fatal(err)
		}
		_ = r.nc.Flush()
		r.violation(t, fmt.Sprintf("%s reads every inbox", role), "_INBOX.>")
	}

	// The default prefix is refused: a client must set its role's.
	nc := natstest.Connect(t, s, nats.UserInfo("vendor", "pw-vendor"))
	if _, err := nc.Request("$JS.API.INFO", nil, 500*time.Millisecond); err == nil {
		t.Error("vendor with the default inbox prefix got a reply")
	}
}
