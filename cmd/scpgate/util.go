package main

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"text/tabwriter"

	"github.com/kelseyhightower/envconfig"
	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/scpgate/scpgate/internal/envcheck"
)

// newLogger returns the logger of a command, writing to stderr at level
// (trace, debug, info, warn, error; "" means info). Lines are JSON, except
// when pretty is set or stderr is a terminal: then they are human-readable.
// An unknown level falls back to info with a warning.
func newLogger(level string, pretty bool) zerolog.Logger {
	return buildLogger(os.Stderr, level, pretty || isTerminal(os.Stderr), false)
}

// buildLogger returns a logger writing to out at level, human-readable
// when pretty. With sessionsAtDebug, the info lines of single controller
// sessions (those with a "session" field) are shown at debug level only.
func buildLogger(out io.Writer, level string, pretty, sessionsAtDebug bool) zerolog.Logger {
	var w io.Writer = out
	if pretty {
		w = zerolog.ConsoleWriter{Out: out, TimeFormat: "15:04:05.000"}
	}
	lvl := zerolog.InfoLevel
	bad := false
	if level != "" {
		l, err := zerolog.ParseLevel(level)
		if err != nil || l == zerolog.NoLevel {
			bad = true
		} else {
			lvl = l
		}
	}
	if sessionsAtDebug {
		w = &sessionDemoter{out: w, show: lvl <= zerolog.DebugLevel}
	}
	log := zerolog.New(w).With().Timestamp().Logger()
	if bad {
		log.Warn().Str("level", level).Msg("unknown log level; using info")
	}
	return log.Level(lvl)
}

func init() {
	// Log lines carry millisecond timestamps and durations with their
	// unit ("1.5s"), so that a reader needs no legend.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	zerolog.DurationFieldFormat = zerolog.DurationFormatString
}

// validLevel returns an error for a log level newLogger does not know.
func validLevel(level string) error {
	switch level {
	case "trace", "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("%q is not a log level: it must be one of trace, debug, info, warn, error", level)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}

// loadEnv fills spec (a pointer to a config struct) from the environment
// with envconfig: field Foo with tag envconfig:"FOO" is read from
// <prefix>_FOO (prefix "" reads FOO). Fields keep their value when the
// variable is unset and have no default tag, so defaults set before the call
// survive.
//
// The values are then checked against the ranges of the struct's tags
// (see internal/envcheck): an error names the variable, its value and what
// is allowed.
func loadEnv(prefix string, spec any) error {
	if err := envconfig.Process(prefix, spec); err != nil {
		return fmt.Errorf("read configuration from the environment: %w", envcheck.Explain(err))
	}
	if err := envcheck.Validate(prefix, spec); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	rememberEnv(prefix, spec)
	return nil
}

// envHelpFormat is the envconfig.Usagef template of printEnvHelp.
const envHelpFormat = `{{range .}}  {{usage_key .}}	{{usage_type .}}	{{with usage_default .}}{{.}}{{else}}-{{end}}	{{usage_description .}}{{if usage_required .}} (required){{end}}
{{end}}`

// printEnvHelp prints the environment variables of the config struct spec
// (a pointer or a value) read with prefix: name, type, default, description
// (the desc tag).
func printEnvHelp(w io.Writer, prefix string, spec any) {
	v := reflect.ValueOf(spec)
	if v.Kind() != reflect.Pointer {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		spec = p.Interface()
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  VARIABLE\tTYPE\tDEFAULT\tDESCRIPTION")
	if err := envconfig.Usagef(prefix, spec, tw, envHelpFormat); err != nil {
		fmt.Fprintf(tw, "  (cannot list the variables: %v)\n", err)
	}
	tw.Flush()
}
