//go:build !driveronly

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/internal/natsconn"
	"github.com/scpgate/scpgate/replay"
	"github.com/scpgate/scpgate/streams"
)

func init() {
	register(&command{
		name:    "replay",
		summary: "print one controller's stored events as JSON lines",
		usage: `scpgate replay --controller SERIAL [--since DURATION | --from-seq N] [--kind KIND] [--follow] [--count]

Reads the controller's events back from the SCP_EVENTS stream, oldest first,
one JSON document per line on stdout (the documents of docs/events.md, as
stored). A progress bar is drawn on stderr when it is a terminal, never
into stdout. --count prints only the number of matching events. A serial
of which no event is stored is an error (with --follow, a warning). The
replay's consumer is ephemeral: the server removes it a few seconds
after the replay ends (or is killed).`,
		run: runReplay,
	})
}

func runReplay(ctx context.Context, args []string) error {
	natsCfg := natsconn.Config{}
	fs := newFlagSet("replay", envSpec{prefix: "", spec: &natsCfg})
	serial := fs.String("controller", "", "controller serial (required)")
	since := fs.Duration("since", 0, "only events stored within this long ago (e.g. 1h)")
	fromSeq := fs.Uint64("from-seq", 0, "start at this SCP_EVENTS stream sequence")
	kind := fs.String("kind", "", "only this kind: access, door, input, output, tamper, power, system, presence")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	count := fs.Bool("count", false, "print only the number of matching events")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if err := streams.ValidSerial(*serial); err != nil {
		return usageErrorf("--controller: %v", err)
	}
	if *kind != "" && !scpgate.Kind(*kind).Valid() {
		return usageErrorf("--kind: unknown kind %q", *kind)
	}
	if *since > 0 && *fromSeq > 0 {
		return usageErrorf("--since and --from-seq exclude each other")
	}
	if *count && *follow {
		return usageErrorf("--count and --follow exclude each other")
	}
	if err := loadEnv("", &natsCfg); err != nil {
		return err
	}
	log := newLogger(*logLevel, false)
	js, closeNATS, err := connectJetStream(natsCfg, "scpgate-replay", log)
	if err != nil {
		return err
	}
	defer closeNATS()

	known, err := replay.Known(ctx, js, *serial)
	if err != nil {
		return err
	}
	if !known {
		if !*follow {
			return fmt.Errorf("controller %s: %w", *serial, replay.ErrUnknownController)
		}
		log.Warn().Str("controller", *serial).Msg("no event of this controller is stored yet; waiting for new ones")
	}
	opts := replay.Options{Serial: *serial, Kind: scpgate.Kind(*kind), Since: *since, FromSeq: *fromSeq, Follow: *follow}
	if *count {
		n, err := replay.Count(ctx, js, opts)
		if err != nil {
			return err
		}
		fmt.Println(n)
		return nil
	}
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	defer out.Flush()
	bar := newProgress("replay " + *serial)
	defer bar.Finish()
	write := func(m replay.Msg) error {
		out.Write(m.Data)
		if err := out.WriteByte('\n'); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		if *follow {
			return out.Flush()
		}
		return nil
	}
	return replay.Run(ctx, js, opts, write, bar.Update)
}
