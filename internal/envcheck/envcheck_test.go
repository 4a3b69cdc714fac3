package envcheck_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/scpgate/scpgate/internal/envcheck"
)

type Inner struct {
	Replicas int `envconfig:"REPLICAS" default:"1" min:"1" max:"5" desc:"replicas"`
}

type config struct {
	DrainRate float64       `envconfig:"DRAIN_RATE" default:"500" min:"0.01" desc:"controllers per second sent away"`
	LogLevel  string        `envconfig:"LOG_LEVEL" default:"info" oneof:"trace,debug,info,warn,error"`
	Deadline  time.Duration `envconfig:"DRAIN_DEADLINE" default:"30s" min:"1s"`
	Free      string        `envconfig:"FREE"`
	Inner
}

func load(t *testing.T, env map[string]string) error {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var c config
	if err := envconfig.Process("SCPGATE", &c); err != nil {
		return envcheck.Explain(err)
	}
	return envcheck.Validate("SCPGATE", &c)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none: no error
	}{
		{"defaults", nil, nil},
		{"negative rate", map[string]string{"SCPGATE_DRAIN_RATE": "-5"},
			[]string{"SCPGATE_DRAIN_RATE=-5 is not allowed", "a number of at least 0.01", "controllers per second"}},
		{"unknown level", map[string]string{"SCPGATE_LOG_LEVEL": "verbose"},
			[]string{"SCPGATE_LOG_LEVEL=verbose is not allowed", "one of trace, debug, info, warn, error"}},
		{"short deadline", map[string]string{"SCPGATE_DRAIN_DEADLINE": "10ms"},
			[]string{"SCPGATE_DRAIN_DEADLINE=10ms", "a duration of at least 1s"}},
		{"embedded range", map[string]string{"SCPGATE_REPLICAS": "7"},
			[]string{"SCPGATE_REPLICAS=7", "a whole number from 1 to 5"}},
		{"not a number", map[string]string{"SCPGATE_DRAIN_RATE": "fast"},
			[]string{"SCPGATE_DRAIN_RATE=fast is not allowed: it must be a number"}},
		{"duration without unit", map[string]string{"SCPGATE_DRAIN_DEADLINE": "30"},
			[]string{"SCPGATE_DRAIN_DEADLINE=30 is not allowed", "a duration with a unit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := load(t, tt.env)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, envcheck.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got error %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNamesAndUnknown(t *testing.T) {
	known := envcheck.Names("SCPGATE", &config{})
	want := []string{"SCPGATE_DRAIN_RATE", "SCPGATE_LOG_LEVEL", "SCPGATE_DRAIN_DEADLINE", "SCPGATE_FREE", "SCPGATE_REPLICAS"}
	if strings.Join(known, " ") != strings.Join(want, " ") {
		t.Fatalf("got names %v, want %v", known, want)
	}
	env := []string{"SCPGATE_DRAIN_RATE=1", "SCPGATE_DRAIN_RAET=1", "SCPGATE_TEST_X=1", "PATH=/bin", "SCPGATEWAY=1"}
	got := envcheck.Unknown(env, "SCPGATE", known, "SCPGATE_TEST_")
	if len(got) != 1 || got[0] != "SCPGATE_DRAIN_RAET" {
		t.Fatalf("got unknown %v, want [SCPGATE_DRAIN_RAET]", got)
	}
	if near := envcheck.Closest("SCPGATE_DRAIN_RAET", known); near != "SCPGATE_DRAIN_RATE" {
		t.Errorf("got closest %q, want SCPGATE_DRAIN_RATE", near)
	}
	if near := envcheck.Closest("SCPGATE_SOMETHING_ELSE", known); near != "" {
		t.Errorf("got closest %q, want none", near)
	}
}

func TestParseStore(t *testing.T) {
	tests := []struct {
		dsn, kind, target string
	}{
		{"sqlite:data/x.db", envcheck.StoreSQLite, "data/x.db"},
		{"sqlite:/var/lib/scpgate/store", envcheck.StoreSQLite, "/var/lib/scpgate/store"},
		{"./scpgate.db", envcheck.StoreSQLite, "./scpgate.db"},
		{"postgres://u:p@db/scpgate", envcheck.StorePostgres, "postgres://u:p@db/scpgate"},
		{"postgresql://db/scpgate", envcheck.StorePostgres, "postgresql://db/scpgate"},
		{"host=db dbname=scpgate user=u", envcheck.StorePostgres, "host=db dbname=scpgate user=u"},
		{"mysql://x", "", ""},
		{"data/scpgate", "", ""},
		{"sqlite:", "", ""},
		{"", "", ""},
		{"mysql://u:secret@h/x.db", "", ""},
	}
	for _, tt := range tests {
		kind, target, err := envcheck.ParseStore(tt.dsn)
		if tt.kind == "" {
			if !errors.Is(err, envcheck.ErrBadStore) {
				t.Errorf("ParseStore(%q): got %v, want ErrBadStore", tt.dsn, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseStore(%q): error %q shows the password", tt.dsn, err)
			}
			continue
		}
		if err != nil || kind != tt.kind || target != tt.target {
			t.Errorf("ParseStore(%q): got %q %q %v, want %q %q", tt.dsn, kind, target, err, tt.kind, tt.target)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@db:5432/x?sslmode=disable", "postgres://u:xxxxx@db:5432/x?sslmode=disable"},
		{"postgres://db/x?password=secret", "postgres://db/x?password=xxxxx"},
		{"host=db password=secret dbname=x", "host=db password=xxxxx dbname=x"},
		{"host=db password='se cret' dbname=x", "host=db password=xxxxx dbname=x"},
		{"data/x.db", "data/x.db"},
	}
	for _, tt := range tests {
		if got := envcheck.RedactDSN(tt.in); got != tt.want {
			t.Errorf("RedactDSN(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
