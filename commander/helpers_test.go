package commander_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/commander"
	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/internal/natstest"
	"github.com/scpgate/scpgate/schema/schematest"
	"github.com/scpgate/scpgate/streams"
)

// env is one test's world: a JetStream server with the streams and
// buckets, a commander and its HTTP server.
type env struct {
	t       *testing.T
	ctx     context.Context
	srv     *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	h       *streams.Handles
	status  jetstream.KeyValue
	svc     *commander.Service
	http    *httptest.Server
	timeout time.Duration
}

type envOpt func(*streams.Config, *commander.Options)

func withQueueCap(n int64) envOpt {
	return func(c *streams.Config, _ *commander.Options) { c.CommandQueueCap = n }
}

func withTimeout(d time.Duration) envOpt {
	return func(_ *streams.Config, o *commander.Options) { o.Timeout = d }
}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	srv := natstest.RunServer(t)
	nc := natstest.Connect(t, srv)
	js := natstest.JetStream(t, nc)

	cfg := streams.DefaultConfig()
	cfg.Storage = jetstream.MemoryStorage
	o := commander.Options{JS: js, NC: nc, Log: zerolog.New(zerolog.NewTestWriter(t)), Timeout: 2 * time.Second}
	for _, f := range opts {
		f(&cfg, &o)
	}
	h, err := streams.Ensure(ctx, js, cfg)
	if err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	status, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: commands.StatusBucket, History: 1, TTL: 7 * 24 * time.Hour, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		t.Fatalf("create status bucket: %v", err)
	}
	svc, err := commander.New(o)
	if err != nil {
		t.Fatalf("new commander: %v", err)
	}
	hs := httptest.NewServer(schematest.DocumentedOnly(t, svc.Handler()))
	t.Cleanup(func() {
		hs.Close()
		if err := svc.Close(); err != nil {
			t.Errorf("close commander: %v", err)
		}
	})
	return &env{t: t, ctx: ctx, srv: srv, nc: nc, js: js, h: h, status: status, svc: svc, http: hs, timeout: o.Timeout}
}

// answer is an HTTP answer: status and raw body.
type answer struct {
	code int
	body []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// apiError decodes an error answer.
func (a answer) apiError(t *testing.T) (msg, code string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	a.decode(t, &e)
	return e.Error, e.Code
}

func (e *env) do(method, path string, body []byte) answer {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.ctx, method, e.http.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read answer of %s %s: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: got content type %q, want application/json", method, path, ct)
	}
	return answer{resp.StatusCode, b}
}

func (e *env) post(serial, query string, body any) answer {
	e.t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			e.t.Fatalf("encode body: %v", err)
		}
	}
	return e.do(http.MethodPost, "/v1/controllers/"+serial+"/commands"+query, b)
}

func (e *env) get(path string) answer {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil)
}

// submit posts a command and wants 202.
func (e *env) submit(serial string, body any) commander.SubmitResponse {
	e.t.Helper()
	a := e.post(serial, "", body)
	if a.code != http.StatusAccepted {
		e.t.Fatalf("submit to %s: got %d %s, want 202", serial, a.code, a.body)
	}
	var r commander.SubmitResponse
	a.decode(e.t, &r)
	return r
}

// putRecord writes a status record as the driver would.
func (e *env) putRecord(rec commands.Record) {
	e.t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		e.t.Fatalf("encode record: %v", err)
	}
	if _, err := e.status.Put(e.ctx, rec.ID, b); err != nil {
		e.t.Fatalf("put record %s: %v", rec.ID, err)
	}
}

// pending returns the number of commands queued for serial.
func (e *env) pending(serial string) uint64 {
	e.t.Helper()
	subj, _ := streams.CommandSubject(serial)
	info, err := e.h.Commands.Info(e.ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		e.t.Fatalf("commands info: %v", err)
	}
	return info.State.Subjects[subj]
}

func u16(n uint16) *uint16 { return &n }

// fakeDriver answers every command of serial with status: it rings on the
// core doorbell of scp.cmd.<serial>, reads the pending commands from the
// stream after its cursor, publishes a Result per command and removes the
// command, as the driver does. It stops with the test.
func (e *env) fakeDriver(serial string, status scpgate.CommandStatus) {
	e.t.Helper()
	subj, _ := streams.CommandSubject(serial)
	resSubj, _ := streams.ResultSubject(serial)
	bell := make(chan *nats.Msg, 1024)
	sub, err := e.nc.ChanSubscribe(subj, bell)
	if err != nil {
		e.t.Fatalf("driver doorbell: %v", err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	e.t.Cleanup(func() { cancel(); _ = sub.Unsubscribe(); <-done })
	go func() {
		defer close(done)
		var cursor uint64
		for {
			// The doorbell can beat the stream's storing of the command
			// (the core message and the store race), so look again
			// after a while too.
			select {
			case <-ctx.Done():
				return
			case <-bell:
			case <-time.After(50 * time.Millisecond):
			}
			for {
				msg, err := e.h.Commands.GetMsg(ctx, cursor+1, jetstream.WithGetMsgSubject(subj))
				if err != nil {
					break // none left
				}
				cursor = msg.Sequence
				var c scpgate.Command
				if err := json.Unmarshal(msg.Data, &c); err != nil {
					e.t.Errorf("driver: decode command %d: %v", msg.Sequence, err)
					continue
				}
				id := commands.ID(serial, msg.Sequence)
				now := time.Now().UTC()
				res := scpgate.Result{V: 1, ID: id, Controller: serial, Type: c.Type, Status: status,
					Seq: msg.Sequence, Created: c.Created, Sent: &now, Finished: now, Driver: "fake"}
				b, _ := json.Marshal(res)
				rec, _ := json.Marshal(commands.RecordOf(&res))
				if _, err := e.status.Put(ctx, id, rec); err != nil && ctx.Err() == nil {
					e.t.Errorf("driver: put record %s: %v", id, err)
				}
				if _, err := e.js.Publish(ctx, resSubj, b, jetstream.WithMsgID(id)); err != nil && ctx.Err() == nil {
					e.t.Errorf("driver: publish result %s: %v", id, err)
				}
				if err := e.h.Commands.DeleteMsg(ctx, msg.Sequence); err != nil && ctx.Err() == nil {
					e.t.Errorf("driver: delete command %d: %v", msg.Sequence, err)
				}
			}
		}
	}()
}
