package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
)

// usageOut is where a command's usage is printed (for `scpgate help X`
// and `scpgate X -h`): stdout, so that it can be paged and searched. Flag
// errors print one line and a hint on stderr instead (see exitCode).
var usageOut io.Writer = os.Stdout

var (
	usagesMu sync.Mutex
	usages   = map[*flag.FlagSet]func(io.Writer){} // printers of newFlagSet's flag sets
)

// envSpec names a config struct read from the environment with loadEnv,
// so that the command's help can list its variables.
type envSpec struct {
	prefix string // "SCPGATE", or "" for natsconn.Config (NATS_URL, ...)
	spec   any    // pointer to the config struct
}

// usageError is a wrong command line. It exits with code 2.
type usageError struct {
	err     error
	printed bool // the flag package already printed the error and usage
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usage error: the command line is wrong (a missing
// argument, conflicting flags). scpgate prints it with a pointer to the
// command's help and exits with code 2.
func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// newFlagSet returns the FlagSet of the registered command name. Its usage
// output shows the command's summary and synopsis, every flag with its
// default, and the environment variables of env.
func newFlagSet(name string, env ...envSpec) *flag.FlagSet {
	fs := flag.NewFlagSet("scpgate "+name, flag.ContinueOnError)
	// The flag package prints nothing itself: parseFlags prints the
	// usage for -h, exitCode one line for an error.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	usagesMu.Lock()
	usages[fs] = func(w io.Writer) {
		fs.SetOutput(w)
		defer fs.SetOutput(io.Discard)
		printCommandUsage(w, lookup(name), name, fs, env)
	}
	usagesMu.Unlock()
	return fs
}

// parseFlags parses args with fs. It returns flag.ErrHelp for -h (the usage
// is printed on usageOut), a *usageError for a bad flag (printed by
// exitCode as one line and a hint), and nil otherwise.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usagesMu.Lock()
		p := usages[fs]
		usagesMu.Unlock()
		if p != nil {
			p(usageOut)
		} else {
			fs.SetOutput(usageOut)
			fs.PrintDefaults()
		}
		return err
	case err != nil:
		return &usageError{err: err}
	}
	return nil
}

// printCommands prints the list of subcommands.
func printCommands(w io.Writer) {
	fmt.Fprint(w, `scpgate connects access-control controllers to NATS JetStream: it keeps their
sessions, stores their events durably, delivers commands and records results.

Usage: scpgate <command> [flags]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, `
Run 'scpgate help <command>' (or 'scpgate <command> -h') for its flags and
environment variables.
`)
}

// helpFor prints the usage of the command called name.
func helpFor(name string, stdout, stderr io.Writer) int {
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "scpgate help: unknown command %q\nRun 'scpgate help' for the list of commands.\n", name)
		return exitUsage
	}
	// The command prints its own usage when parsing "-h". The context is
	// already cancelled so that a command that does not parse its flags
	// first stops at once instead of running.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	usageOut = stdout
	if err := c.run(ctx, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, c, name, nil, nil)
	}
	return exitOK
}

// printCommandUsage prints a command's summary, synopsis, flags (when fs is
// not nil) and environment variables.
func printCommandUsage(w io.Writer, c *command, name string, fs *flag.FlagSet, env []envSpec) {
	usage := "scpgate " + name + " [flags]"
	if c != nil {
		fmt.Fprintf(w, "scpgate %s: %s\n\n", name, c.summary)
		if c.usage != "" {
			usage = strings.TrimSpace(c.usage)
		}
	}
	fmt.Fprintf(w, "Usage: %s\n", usage)
	if fs != nil {
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	if len(env) > 0 {
		fmt.Fprint(w, "\nEnvironment (flags override it):\n")
	}
	for _, e := range env {
		printEnvHelp(w, e.prefix, e.spec)
	}
}
