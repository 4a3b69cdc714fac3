package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Result is what one scenario measured.
type Result struct {
	Scenario string    `json:"scenario"`
	Command  string    `json:"command,omitempty"`
	Quick    bool      `json:"quick"`
	Machine  Machine   `json:"machine"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"` // wall time of the whole scenario
	Params   Params    `json:"params"`
	// DriverEnv is what was added to the drivers' environment.
	DriverEnv []string `json:"driver_env,omitempty"`
	Rows      []Row    `json:"rows"`
	Notes     []string `json:"notes,omitempty"`
}

// Row is one measured figure, with the target it is held to, if any.
type Row struct {
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	// Target is the goal, like ">= 4000" or "<= 8192"; empty when there is
	// none.
	Target string `json:"target,omitempty"`
	// Met says whether Value reaches Target; nil without a target, and in
	// quick mode (figures of a few seconds prove nothing).
	Met *bool `json:"met,omitempty"`
}

// Row returns the row named metric, or nil.
func (r *Result) Row(metric string) *Row {
	for i := range r.Rows {
		if r.Rows[i].Metric == metric {
			return &r.Rows[i]
		}
	}
	return nil
}

// add appends a row without a target.
func (r *Result) add(metric string, value float64, unit string) {
	r.Rows = append(r.Rows, Row{Metric: metric, Value: value, Unit: unit})
}

// atLeast appends a row that must reach goal.
func (r *Result) atLeast(metric string, value float64, unit string, goal float64) {
	r.target(metric, value, unit, ">=", goal, value >= goal)
}

// atMost appends a row that must stay at or below goal.
func (r *Result) atMost(metric string, value float64, unit string, goal float64) {
	r.target(metric, value, unit, "<=", goal, value <= goal)
}

func (r *Result) target(metric string, value float64, unit, op string, goal float64, met bool) {
	row := Row{Metric: metric, Value: value, Unit: unit, Target: op + " " + formatValue(goal)}
	if !r.Quick {
		row.Met = &met
	}
	r.Rows = append(r.Rows, row)
}

// note appends a line of explanation printed under the table.
func (r *Result) note(format string, a ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, a...))
}

// WriteTable prints the result as a text table with the machine and the
// notes.
func (r *Result) WriteTable(w io.Writer) error {
	mode := ""
	if r.Quick {
		mode = " (quick: targets not judged)"
	}
	fmt.Fprintf(w, "scpgate bench %s%s\n", r.Scenario, mode)
	if r.Command != "" {
		fmt.Fprintf(w, "command: %s\n", r.Command)
	}
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	fmt.Fprintf(w, "date:    %s, %.0f s\n", r.Started.UTC().Format(time.RFC3339), r.Seconds)
	if len(r.DriverEnv) > 0 {
		fmt.Fprintf(w, "driver environment: %s\n", strings.Join(r.DriverEnv, " "))
	}
	fmt.Fprintln(w)
	rows := [][5]string{{"metric", "value", "unit", "target", "met"}}
	for _, row := range r.Rows {
		met := ""
		if row.Met != nil {
			met = "no"
			if *row.Met {
				met = "yes"
			}
		}
		rows = append(rows, [5]string{row.Metric, formatValue(row.Value), row.Unit, row.Target, met})
	}
	var width [5]int
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range rows {
		line := fmt.Sprintf("%-*s  %*s  %-*s  %-*s  %s", width[0], row[0], width[1], row[1], width[2], row[2], width[3], row[3], row[4])
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " ")); err != nil {
			return err
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// WriteJSON prints the result as one indented JSON document.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// formatValue prints v with thousands separators and at most three
// significant decimals.
func formatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	a := math.Abs(v)
	var s string
	switch {
	case a >= 1000 || a == math.Trunc(a):
		s = strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 3, 64)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Machine describes the computer a result was measured on.
type Machine struct {
	Cores     int    `json:"cores"`
	MemoryMiB int64  `json:"memory_mib"`
	CPU       string `json:"cpu"`
	Go        string `json:"go"`
	OS        string `json:"os"`
}

// String is a one-line description.
func (m Machine) String() string {
	return fmt.Sprintf("%d cores, %.1f GiB, %q, %s %s", m.Cores, float64(m.MemoryMiB)/1024, m.CPU, m.Go, m.OS)
}

// ThisMachine describes the computer the process runs on (memory and CPU
// model from /proc on Linux, left empty elsewhere).
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if kb, ok := procField("/proc/meminfo", "MemTotal:"); ok {
		m.MemoryMiB = kb / 1024
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}
