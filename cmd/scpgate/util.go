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
)

// newLogger returns the logger of a command, writing to stderr at level
// (trace, debug, info, warn, error; "" means info). Lines are JSON, except
// when pretty is set or stderr is a terminal: then they are human-readable.
// An unknown level falls back to info with a warning.
func newLogger(level string, pretty bool) zerolog.Logger {
	var w io.Writer = os.Stderr
	if pretty || isTerminal(os.Stderr) {
		w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"}
	}
	log := zerolog.New(w).With().Timestamp().Logger()
	lvl := zerolog.InfoLevel
	if level != "" {
		l, err := zerolog.ParseLevel(level)
		if err != nil || l == zerolog.NoLevel {
			log.Warn().Str("level", level).Msg("unknown log level; using info")
		} else {
			lvl = l
		}
	}
	return log.Level(lvl)
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
func loadEnv(prefix string, spec any) error {
	if err := envconfig.Process(prefix, spec); err != nil {
		return fmt.Errorf("read configuration from the environment: %w", err)
	}
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
