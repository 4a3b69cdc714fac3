package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// alertRules is a Prometheus rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// alertFiles are the Prometheus rule files under deploy/prometheus.
var alertFiles = []string{"prometheus/alerts.yml", "prometheus/alerts-operations.yml"}

// TestAlertRules checks the rule files of deploy/prometheus: every rule
// has a name, an expression, a severity and a summary, names are unique
// across the files, and every scpgate_ series an expression reads is one
// the code exports. Where Prometheus's own checker is installed (Debian
// package prometheus; required with SCPGATE_TEST_REQUIRE_PROMTOOL=1, as in
// CI) it checks the expressions too.
func TestAlertRules(t *testing.T) {
	exported := exportedMetrics(t)
	seen := map[string]string{}
	series := regexp.MustCompile(`\bscpgate_[a-z0-9_]+`)
	for _, file := range alertFiles {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var rules alertRules
		if err := yaml.Unmarshal(b, &rules); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		n := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				n++
				if r.Alert == "" || r.Expr == "" {
					t.Errorf("%s: group %s: rule %+v lacks alert or expr", file, g.Name, r)
				}
				if other, ok := seen[r.Alert]; ok {
					t.Errorf("%s: alert %s also defined in %s", file, r.Alert, other)
				}
				seen[r.Alert] = file
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("%s: alert %s: severity %q, want warning or critical", file, r.Alert, s)
				}
				if r.Annotations["summary"] == "" {
					t.Errorf("%s: alert %s: no summary", file, r.Alert)
				}
				for _, m := range series.FindAllString(r.Expr, -1) {
					if !exported[m] {
						t.Errorf("%s: alert %s reads %s, which scpgate does not export", file, r.Alert, m)
					}
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no rules", file)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("SCPGATE_TEST_REQUIRE_PROMTOOL") == "1" {
			t.Fatal("promtool is not installed, and SCPGATE_TEST_REQUIRE_PROMTOOL=1")
		}
		t.Log("promtool not installed: expressions not checked (set SCPGATE_TEST_REQUIRE_PROMTOOL=1 to fail instead)")
		return
	}
	args := append([]string{"check", "rules"}, alertFiles...)
	if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// exportedMetrics returns the scpgate_ names the metrics package declares
// (desc("name", ...) and the histograms' Name fields).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../internal/metrics/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("metrics sources: %v", err)
	}
	re := regexp.MustCompile(`(?:desc\(|Name:\s*)"([a-z0-9_]+)"`)
	out := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out["scpgate_"+m[1]] = true
		}
	}
	return out
}
