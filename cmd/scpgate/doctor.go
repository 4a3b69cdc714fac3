//go:build !driveronly

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scpgate/scpgate/internal/natsconn"
)

func init() {
	register(&command{
		name:    "doctor",
		summary: "check a role's configuration and its surroundings before (or while) running it",
		usage: `scpgate doctor [--role driver|ingest|commander|all] [--json] [--timeout D]

Checks, with the same environment as the role(s) would have:
  config        every SCPGATE_ setting is valid; no unknown SCPGATE_ variable;
                the store (SCPGATE_DB) is one scpgate can open
  ports         the listen addresses are free (a running role holds its own:
                run doctor before starting it, or on another host)
  nats          NATS answers at NATS_URL with these credentials, with JetStream
  permissions   the NATS user may read the streams and buckets the role uses
  streams       the streams' settings match SCPGATE_REPLICAS, *_MAX_AGE,
                DUPLICATE_WINDOW and COMMAND_QUEUE_CAP
  certificates  SCPGATE_TLS_CERT/KEY load, and every certificate in use
                (controller port, client CA, NATS_TLS_CERT) is valid for 14
                more days
  allow list    SCPGATE_ALLOW_LIST loads and names at least one serial
  api tokens    SCPGATE_API_TOKENS (or _FILE) load: at least 16 characters
                each, known scopes (none set: the HTTP APIs are open)
Prints one line per check and exits with status 1 when any found a problem.`,
		run: runDoctor,
	})
}

// finding is the result of one check.
type finding struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// doctorReport collects the findings.
type doctorReport struct {
	Findings []finding `json:"findings"`
}

func (r *doctorReport) ok(check, format string, a ...any) {
	r.Findings = append(r.Findings, finding{check, true, fmt.Sprintf(format, a...)})
}

func (r *doctorReport) problem(check, format string, a ...any) {
	r.Findings = append(r.Findings, finding{check, false, fmt.Sprintf(format, a...)})
}

// problems returns how many findings are problems.
func (r *doctorReport) problems() int {
	n := 0
	for _, f := range r.Findings {
		if !f.OK {
			n++
		}
	}
	return n
}

// doctorRoles are the roles doctor knows.
var doctorRoles = []string{"driver", "ingest", "commander"}

// certWarnBefore is how long before its expiry a certificate is a problem.
const certWarnBefore = 14 * 24 * time.Hour

func runDoctor(ctx context.Context, args []string) error {
	var natsCfg natsconn.Config
	fs := newFlagSet("doctor", envSpec{"", &natsCfg})
	role := fs.String("role", "all", "role to check: driver, ingest, commander or all")
	asJSON := fs.Bool("json", false, "print the findings as one JSON document")
	timeout := fs.Duration("timeout", 5*time.Second, "how long NATS may take to answer each check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	roles := doctorRoles
	if *role != "all" {
		if !slices.Contains(doctorRoles, *role) {
			return usageErrorf("--role %q: want driver, ingest, commander or all", *role)
		}
		roles = []string{*role}
	}
	rep := diagnose(ctx, roles, *timeout)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printFindings(os.Stdout, rep)
	}
	if n := rep.problems(); n > 0 {
		return fmt.Errorf("%d problem(s) found", n)
	}
	return nil
}

// diagnose runs every check for roles.
func diagnose(ctx context.Context, roles []string, timeout time.Duration) *doctorReport {
	rep := &doctorReport{}
	cfgs := checkConfig(rep, roles)
	checkPorts(rep, cfgs)
	checkCertificates(rep, cfgs, time.Now())
	checkAllowList(rep, cfgs)
	checkTokens(ctx, rep, cfgs)
	checkNATS(ctx, rep, cfgs, timeout)
	return rep
}

// printFindings writes one line per finding.
func printFindings(w io.Writer, rep *doctorReport) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, f := range rep.Findings {
		mark := "ok"
		if !f.OK {
			mark = "PROBLEM"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", mark, f.Check, f.Detail)
	}
	tw.Flush()
	if n := rep.problems(); n > 0 {
		fmt.Fprintf(w, "\n%d problem(s) found.\n", n)
	} else {
		fmt.Fprintln(w, "\nNo problem found.")
	}
}

// roleConfigs are the configurations doctor read, nil for a role not
// checked or whose environment is invalid.
type roleConfigs struct {
	roles     []string
	driver    *driverConfig
	ingest    *ingestConfig
	commander *commanderConfig
	nats      *natsconn.Config
	streams   *StreamsEnv // of the first role that read them
}

// checkConfig reads the environment of each role as the role would.
func checkConfig(rep *doctorReport, roles []string) roleConfigs {
	cfgs := roleConfigs{roles: roles}
	for _, role := range roles {
		var err error
		switch role {
		case "driver":
			var c driverConfig
			if err = loadEnv("SCPGATE", &c); err == nil {
				cfgs.driver = &c
				if cfgs.streams == nil {
					cfgs.streams = &c.StreamsEnv
				}
			}
		case "ingest":
			var c ingestConfig
			if err = loadEnv("SCPGATE", &c); err == nil {
				cfgs.ingest = &c
				if cfgs.streams == nil {
					cfgs.streams = &c.StreamsEnv
				}
			}
		case "commander":
			var c commanderConfig
			if err = loadEnv("SCPGATE", &c); err == nil {
				cfgs.commander = &c
				if cfgs.streams == nil {
					cfgs.streams = &c.StreamsEnv
				}
			}
		}
		if err != nil {
			for _, line := range strings.Split(strings.TrimPrefix(err.Error(), "configuration: "), "\n") {
				rep.problem("config", "%s: %s", role, line)
			}
			continue
		}
		rep.ok("config", "%s: settings valid", role)
	}
	if cfgs.ingest != nil {
		if kind, _, err := envcheckStore(cfgs.ingest.DB); err != nil {
			rep.problem("config", "ingest: %v", err)
		} else {
			rep.ok("config", "ingest: store %s (%s)", kind, redactedDSN(cfgs.ingest.DB))
		}
	}
	var natsCfg natsconn.Config
	if err := loadEnv("", &natsCfg); err != nil {
		rep.problem("config", "NATS: %v", err)
	} else if err := natsCfg.Validate(); err != nil {
		rep.problem("config", "NATS: %v", err)
	} else {
		cfgs.nats = &natsCfg
	}
	known := knownEnv()
	for _, k := range unknownEnv(known) {
		hint := ""
		if near := closestEnv(k, known); near != "" {
			hint = " (did you mean " + near + "?)"
		}
		rep.problem("config", "%s is not a setting of scpgate%s", k, hint)
	}
	return cfgs
}

// errNoStreams is reported when no role's stream settings could be read.
var errNoStreams = errors.New("no valid stream settings to compare")
