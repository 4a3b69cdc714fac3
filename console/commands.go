package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/commands"
	"github.com/scpgate/scpgate/internal/httpapi"
	"github.com/scpgate/scpgate/streams"
)

// CommandList is the body of GET /console/api/controllers/{serial}/commands:
// the controller's latest commands that a driver took up (sent, then ok,
// nak, failed or expired), newest first. A command still queued has no
// status record yet and is not listed.
type CommandList struct {
	Commands []commands.Record `json:"commands"`
}

// serveCommands answers GET /console/api/controllers/{serial}/commands?limit=.
func (c *Console) serveCommands(w http.ResponseWriter, r *http.Request) {
	serial := r.PathValue("serial")
	if err := streams.ValidSerial(serial); err != nil {
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeBadRequest, err, "%v", err))
		return
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeBadRequest, nil, "limit %q: want 1 to 200", v))
			return
		}
		limit = n
	}
	list, err := recentCommands(r.Context(), c.opts.NC, serial, limit)
	if err != nil {
		c.opts.Log.Warn().Err(err).Str("serial", serial).Msg("console recent commands")
		httpapi.WriteError(w, httpapi.Errorf(httpapi.CodeUnavailable, err, "%v", err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, list)
}

// recentCommands reads the status records of serial (keys <serial>.<seq>
// of the scp_commands bucket) with one watcher and keeps the newest limit.
func recentCommands(ctx context.Context, nc *nats.Conn, serial string, limit int) (CommandList, error) {
	list := CommandList{Commands: []commands.Record{}}
	js, err := jetstream.New(nc)
	if err != nil {
		return list, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, commands.StatusBucket)
	if err != nil {
		return list, fmt.Errorf("bucket %s: %w", commands.StatusBucket, err)
	}
	err = watchAll(ctx, kv, serial+".*", func(_ string, v []byte) {
		var rec commands.Record
		if json.Unmarshal(v, &rec) != nil {
			return
		}
		list.Commands = append(list.Commands, rec)
		if len(list.Commands) > 4*limit { // keep memory bounded on a busy controller
			list.Commands = newest(list.Commands, limit)
		}
	})
	if err != nil {
		return list, err
	}
	list.Commands = newest(list.Commands, limit)
	return list, nil
}

// newest sorts recs by sequence, newest first, and keeps n.
func newest(recs []commands.Record, n int) []commands.Record {
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq > recs[j].Seq })
	if len(recs) > n {
		recs = recs[:n]
	}
	return recs
}
