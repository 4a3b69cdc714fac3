package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker-compose.yml the tests read.
type composeFile struct {
	Name     string                     `yaml:"name"`
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

// composeService is one service; fields that compose accepts in several
// forms are normalised by their types.
type composeService struct {
	Image           string             `yaml:"image"`
	Build           any                `yaml:"build"`
	Entrypoint      stringList         `yaml:"entrypoint"`
	Command         stringList         `yaml:"command"`
	Environment     envMap             `yaml:"environment"`
	Volumes         []string           `yaml:"volumes"`
	Ports           []string           `yaml:"ports"`
	Profiles        []string           `yaml:"profiles"`
	DependsOn       dependsOn          `yaml:"depends_on"`
	Healthcheck     *composeHealth     `yaml:"healthcheck"`
	StopGracePeriod string             `yaml:"stop_grace_period"`
	StopSignal      string             `yaml:"stop_signal"`
	Restart         string             `yaml:"restart"`
	Ulimits         map[string]ulimits `yaml:"ulimits"`
}

// composeHealth is a service's healthcheck.
type composeHealth struct {
	Test     stringList `yaml:"test"`
	Disable  bool       `yaml:"disable"`
	Interval string     `yaml:"interval"`
}

// stringList is a command: a YAML list, or a string split on spaces.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

// envMap is an environment: a mapping, or a list of KEY=VALUE.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	m := envMap{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		*e = m
		return nil
	}
	var raw map[string]any
	if err := n.Decode(&raw); err != nil {
		return err
	}
	for k, v := range raw {
		if v == nil {
			m[k] = ""
			continue
		}
		m[k] = fmt.Sprint(v)
	}
	*e = m
	return nil
}

// dependsOn maps a dependency to its condition: a mapping with
// conditions, or a list (condition service_started).
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	m := dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			m[s] = "service_started"
		}
		*d = m
		return nil
	}
	var raw map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	for k, v := range raw {
		m[k] = cmpOr(v.Condition, "service_started")
	}
	*d = m
	return nil
}

// ulimits is a limit: one number, or soft and hard.
type ulimits struct{ Soft, Hard int }

func (u *ulimits) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var v int
		if err := n.Decode(&v); err != nil {
			return err
		}
		u.Soft, u.Hard = v, v
		return nil
	}
	var raw struct{ Soft, Hard int }
	if err := n.Decode(&raw); err != nil {
		return err
	}
	u.Soft, u.Hard = raw.Soft, raw.Hard
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// composeVar matches compose's variable references: $$, ${VAR},
// ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR.
var composeVar = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// interpolate replaces the variable references of s as compose does, with
// the variables of vars (an unset variable without default is "").
func interpolate(s string, vars map[string]string) string {
	return composeVar.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		m := composeVar.FindStringSubmatch(ref)
		name, op, arg := m[1], m[2], m[3]
		if name == "" {
			name = m[4]
		}
		v, set := vars[name]
		switch op {
		case ":-":
			if v == "" {
				return arg
			}
		case "-":
			if !set {
				return arg
			}
		}
		return v
	})
}

// composeVars returns the names of the variables s refers to.
func composeVars(s string) []string {
	var out []string
	for _, m := range composeVar.FindAllStringSubmatch(s, -1) {
		if n := cmpOr(m[1], m[4]); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// loadCompose reads docker-compose.yml with its variables interpolated
// from vars (nil: every default). It also returns the variables the file
// refers to.
func loadCompose(t testing.TB, vars map[string]string) (*composeFile, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatalf("read docker-compose.yml: %v", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		t.Fatalf("parse docker-compose.yml: %v", err)
	}
	var names []string
	walkScalars(&root, func(n *yaml.Node) {
		names = append(names, composeVars(n.Value)...)
		n.Value = interpolate(n.Value, vars)
	})
	slices.Sort(names)
	var f composeFile
	if err := root.Decode(&f); err != nil {
		t.Fatalf("decode docker-compose.yml: %v", err)
	}
	if len(f.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return &f, slices.Compact(names)
}

// walkScalars calls fn on every scalar node under n (anchors included,
// each once).
func walkScalars(n *yaml.Node, fn func(*yaml.Node)) {
	seen := map[*yaml.Node]bool{}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen[n] {
			return
		}
		seen[n] = true
		if n.Kind == yaml.ScalarNode && n.Tag != "!!merge" {
			fn(n)
		}
		for _, c := range n.Content {
			walk(c)
		}
		walk(n.Alias)
	}
	walk(n)
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Service roles, by image.
func (s *composeService) isScpgate() bool { return strings.HasPrefix(s.Image, "scpgate:") }
func (s *composeService) isNATS() bool    { return strings.HasPrefix(s.Image, "nats:") }
func (s *composeService) isPostgres() bool {
	return strings.HasPrefix(s.Image, "postgres:")
}
func (s *composeService) isHAProxy() bool { return strings.HasPrefix(s.Image, "haproxy:") }

// subcommand returns the scpgate subcommand a scpgate service runs.
func (s *composeService) subcommand() string {
	if len(s.Command) == 0 {
		return ""
	}
	return s.Command[0]
}

// servicesWhere returns the names of the services for which keep is true,
// in order.
func (f *composeFile) servicesWhere(keep func(*composeService) bool) []string {
	var out []string
	for _, name := range sortedKeys(f.Services) {
		if keep(f.Services[name]) {
			out = append(out, name)
		}
	}
	return out
}

// hostPath maps a container path of service s to the repository file it
// is bind-mounted from, or "" when no bind mount covers it.
func (s *composeService) hostPath(containerPath string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], ".") {
			continue
		}
		src, dst := parts[0], strings.TrimSuffix(parts[1], "/")
		if containerPath == dst {
			return filepath.Join(repoRoot, src)
		}
		if rel, ok := strings.CutPrefix(containerPath, dst+"/"); ok {
			return filepath.Join(repoRoot, src, rel)
		}
	}
	return ""
}

// namedVolumeAt returns the named volume mounted at containerPath in s.
func (s *composeService) namedVolumeAt(containerPath string) string {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && !strings.HasPrefix(parts[0], ".") && !strings.HasPrefix(parts[0], "/") &&
			strings.TrimSuffix(parts[1], "/") == strings.TrimSuffix(containerPath, "/") {
			return parts[0]
		}
	}
	return ""
}

// publishes reports whether s publishes container port p.
func (s *composeService) publishes(p string) bool {
	for _, spec := range s.Ports {
		spec, _, _ = strings.Cut(spec, "/")
		parts := strings.Split(spec, ":")
		if parts[len(parts)-1] == p {
			return true
		}
	}
	return false
}
