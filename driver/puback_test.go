package driver

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/internal/natstest"
)

// realReplies asks an embedded server for the replies a publish can get:
// stored, duplicate, stored in a domain, an API error, no responders.
func realReplies(t testing.TB) []*nats.Msg {
	t.Helper()
	opts := natstest.Options(t)
	opts.JetStreamDomain = "hub"
	srv := natstest.RunServerWith(t, opts)
	nc := natstest.Connect(t, srv)
	js := natstest.JetStream(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventsStream, Subjects: []string{"scp.evt.>"}}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	var out []*nats.Msg
	ask := func(subj string, h nats.Header) {
		m := &nats.Msg{Subject: subj, Data: []byte("{}"), Header: h}
		r, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil && !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("request %s: %v", subj, err)
		}
		if r == nil { // nats.go turns the 503 status into an error: rebuild it
			r = &nats.Msg{Header: nats.Header{"Status": []string{"503"}}}
		}
		out = append(out, r)
	}
	ask("scp.evt.A.access", nats.Header{jetstream.MsgIDHeader: []string{"A.1.1"}})
	ask("scp.evt.A.access", nats.Header{jetstream.MsgIDHeader: []string{"A.1.1"}})
	ask("scp.evt.A.door", nats.Header{jetstream.MsgIDHeader: []string{"A.1.2"}})
	ask("scp.evt.A.door", nats.Header{jetstream.ExpectedLastSeqHeader: []string{"1"}})
	ask("nowhere.at.all", nil)
	return out
}

func TestParsePubAckRealReplies(t *testing.T) {
	replies := realReplies(t)
	want := []struct {
		seq       uint64
		duplicate bool
		err       bool
		fast      bool
	}{
		{seq: 1, fast: true},
		{seq: 1, duplicate: true, fast: true},
		{seq: 2, fast: true},
		{err: true},
		{err: true},
	}
	for i, m := range replies {
		w := want[i]
		pa, err := parsePubAck(m)
		if (err != nil) != w.err {
			t.Errorf("reply %d %q: error %v, want error %v", i, m.Data, err, w.err)
			continue
		}
		if err == nil && (pa.seq != w.seq || pa.duplicate != w.duplicate || pa.stream != eventsStream) {
			t.Errorf("reply %d %q: got %+v, want seq %d duplicate %v", i, m.Data, pa, w.seq, w.duplicate)
		}
		if _, ok := fastPubAck(m.Data); ok != w.fast {
			t.Errorf("reply %d %q: fast path %v, want %v", i, m.Data, ok, w.fast)
		}
	}
	if _, err := parsePubAck(replies[3]); !errors.As(err, new(*jetstream.APIError)) {
		t.Errorf("API error reply: got %v, want a *jetstream.APIError", err)
	}
	if _, err := parsePubAck(replies[4]); !errors.Is(err, errNoResponders) {
		t.Errorf("status reply: got %v, want errNoResponders", err)
	}
}

func TestFastPubAckTable(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want pubAck
	}{
		{`{"stream":"SCP_EVENTS","seq":7}`, true, pubAck{"SCP_EVENTS", 7, false}},
		{`{"stream":"SCP_EVENTS","seq":7,"duplicate": true}`, true, pubAck{"SCP_EVENTS", 7, true}},
		{` { "stream" : "S" , "domain":"d", "seq" : 18446744073709551615 } `, false, pubAck{}}, // 20 digits: encoding/json
		{`{"stream":"S","domain":"d","seq":1844674407370955161}`, true, pubAck{"S", 1844674407370955161, false}},
		{`{"stream":"S","seq":1,"duplicate":false}`, true, pubAck{"S", 1, false}},
		{`{"seq":3,"stream":"S"}`, true, pubAck{"S", 3, false}},
		{`{"stream":"S"}`, false, pubAck{}},
		{`{"seq":3}`, false, pubAck{}},
		{`{"stream":"","seq":3}`, false, pubAck{}},
		{`{"stream":"S","seq":03}`, false, pubAck{}},
		{`{"stream":"S","seq":-3}`, false, pubAck{}},
		{`{"stream":"S","seq":3.0}`, false, pubAck{}},
		{`{"stream":"S","seq":3e1}`, false, pubAck{}},
		{`{"stream":"S\u0041","seq":3}`, false, pubAck{}},
		{`{"Stream":"S","seq":3}`, false, pubAck{}},
		{`{"stream":"S","seq":3,"val":"1"}`, false, pubAck{}},
		{`{"stream":"S","seq":3}x`, false, pubAck{}},
		{`{"stream":"S","seq":3,}`, false, pubAck{}},
		{`{"stream":"S","seq":3,"duplicate":truex}`, false, pubAck{}},
		{`{"stream":"S","stream":"T","seq":3}`, false, pubAck{}},
		{`{"error":{"code":503,"err_code":10077,"description":"x"}}`, false, pubAck{}},
		{``, false, pubAck{}},
	} {
		got, ok := fastPubAck([]byte(tc.in))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("fastPubAck(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzFastPubAck holds the fast path to encoding/json: whatever it
// accepts, encoding/json reads the same.
func FuzzFastPubAck(f *testing.F) {
	for _, m := range realReplies(f) {
		f.Add(m.Data)
	}
	f.Add([]byte(`{"stream":"SCP_EVENTS","domain":"hub","seq":42,"duplicate": true}`))
	f.Add([]byte(` {"seq": 0 , "stream":"x"} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := fastPubAck(data)
		if !ok {
			return
		}
		var r pubAckResponse
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", data, err)
		}
		want := pubAck{stream: r.Stream, seq: r.Sequence, duplicate: r.Duplicate}
		if r.Error != nil || got != want {
			t.Fatalf("%q: fast path %+v, encoding/json %+v", data, got, r)
		}
	})
}

func TestFastPubAckAllocs(t *testing.T) {
	data := []byte(`{"stream":"SCP_EVENTS","seq":123456,"duplicate": true}`)
	if n := testing.AllocsPerRun(100, func() { _, _ = fastPubAck(data) }); n != 0 {
		t.Errorf("fastPubAck allocates %.0f times, want 0", n)
	}
}
