//go:build !driveronly

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/streams"
)

func init() {
	register(&command{
		name:    "streams",
		summary: "create or change the streams and buckets (operators)",
		usage: `scpgate streams apply

Creates the streams SCP_EVENTS, SCP_COMMANDS, SCP_RESULTS and the buckets
scp_sessions, scp_cursors, scp_state and scp_commands, or changes the
existing ones to the SCPGATE_ stream settings (SCPGATE_REPLICAS,
SCPGATE_EVENTS_MAX_AGE, SCPGATE_EVENTS_MAX_BYTES, ...: the same variables
as the services), then prints their settings. The services create missing
streams but never change existing ones: a service whose settings differ
refuses to start and names each difference. Run this with the "ops" NATS
user, then give the services the same settings. The server refuses some
changes (storage type, retention policy).`,
		run: runStreams,
	})
}

func runStreams(ctx context.Context, args []string) error {
	var cfg StreamsEnv
	var natsCfg natsconn.Config
	fs := newFlagSet("streams", envSpec{"SCPGATE", &cfg}, envSpec{"", &natsCfg})
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "apply" {
		return usageErrorf("want the subcommand apply")
	}
	if err := loadEnv("SCPGATE", &cfg); err != nil {
		return err
	}
	if err := loadEnv("", &natsCfg); err != nil {
		return err
	}
	log := newLogger("warn", false)
	nc, err := natsconn.Connect(natsCfg, "scpgate-streams", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	actx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return applyStreams(actx, nc, cfg.config(), os.Stdout)
}

// applyStreams applies cfg and prints the resulting settings to w.
func applyStreams(ctx context.Context, nc *nats.Conn, cfg streams.Config, w io.Writer) error {
	js, err := jetstreamOf(nc)
	if err != nil {
		return err
	}
	h, err := streams.Apply(ctx, js, cfg)
	if err != nil {
		return fmt.Errorf("apply streams: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "STREAM\tREPLICAS\tSTORAGE\tMAX AGE\tMAX BYTES\tDISCARD\tDUPLICATE WINDOW\n")
	for _, s := range []jetstream.Stream{h.Events, h.Commands, h.Results} {
		c := s.CachedInfo().Config
		maxBytes := "none"
		if c.MaxBytes > 0 {
			maxBytes = humanBytes(uint64(c.MaxBytes))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Replicas, c.Storage, c.MaxAge, maxBytes, c.Discard, c.Duplicates)
	}
	return tw.Flush()
}
