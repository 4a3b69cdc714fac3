// Command scpgate runs the scpgate services and the tools around them. Each
// role is a subcommand: `scpgate dev` runs everything in one process,
// `scpgate driver|ingest|commander` run one role each against an external
// NATS cluster, and `scpgate help` lists them all.
//
// Built with -tags driveronly it holds only the driver and version
// commands (the image's scpgate-driver): the other roles' files carry the
// constraint !driveronly, so their packages (the embedded NATS server,
// SQLite, PostgreSQL) are not linked and an empty driver touches a third
// fewer code pages.
//
// This package only parses configuration and wires packages together.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/scpgate/scpgate/internal/metrics"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line was wrong
)

// command is one subcommand. Each subcommand's file registers it in init.
//
// run must parse args with parseFlags(newFlagSet(name, ...), args) before
// doing anything else: `scpgate help X` calls run with "-h" (and an already
// cancelled context) to print X's flags and environment variables.
type command struct {
	name    string // as typed on the command line: "dev"
	summary string // one line, lower case, no final period, for the command list
	usage   string // synopsis ("scpgate dev [flags]"), optionally followed by a blank line and a longer description
	run     func(ctx context.Context, args []string) error
}

// commands is the registry of subcommands, filled by register in init
// functions.
var commands []*command

// register adds c to the registry. It panics on a duplicate or incomplete
// command: that is a programming error found by any test run.
func register(c *command) {
	if c.name == "" || c.summary == "" || c.run == nil {
		panic(fmt.Sprintf("scpgate: command %q registered without name, summary or run", c.name))
	}
	if lookup(c.name) != nil {
		panic(fmt.Sprintf("scpgate: command %q registered twice", c.name))
	}
	commands = append(commands, c)
	slices.SortFunc(commands, func(a, b *command) int { return cmp.Compare(a.name, b.name) })
}

// lookup returns the registered command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func main() {
	metrics.SetVersion(version)
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// dispatch runs the command line args (without the program name) and
// returns the exit code.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printCommands(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if args[0] == "help" && len(args) > 1 {
			return helpFor(args[1], stdout, stderr)
		}
		printCommands(stdout)
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		fmt.Fprintf(stderr, "scpgate: unknown command %q\nRun 'scpgate help' for the list of commands.\n", args[0])
		return exitUsage
	}

	// The first SIGINT or SIGTERM cancels ctx so the command shuts down
	// gracefully; once it has, the signals get their default behaviour
	// back and a second one ends the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	usageOut = stdout
	err := c.run(ctx, args[1:])
	return exitCode(ctx, c, err, stderr)
}

// exitCode reports err of command c and returns the exit code for it.
func exitCode(ctx context.Context, c *command, err error, stderr io.Writer) int {
	var uerr *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &uerr):
		if !uerr.printed {
			fmt.Fprintf(stderr, "scpgate %s: %v\nsee 'scpgate help %s'\n", c.name, uerr.err, c.name)
		}
		return exitUsage
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return exitOK // stopped by a signal: a clean shutdown
	}
	fmt.Fprintf(stderr, "scpgate %s: %v\n", c.name, err)
	return exitError
}
