package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// usageOut is where a command's usage is printed: stdout for `scpgate help
// X`, stderr for `scpgate X -h` and flag errors.
var usageOut io.Writer = os.Stderr

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
	fs.SetOutput(usageOut)
	fs.Usage = func() { printCommandUsage(fs.Output(), lookup(name), name, fs, env) }
	return fs
}

// parseFlags parses args with fs. It returns flag.ErrHelp for -h (the usage
// is printed), a *usageError for a bad flag or stray argument (the error
// and usage are printed), and nil otherwise.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return &usageError{err: err, printed: true}
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
