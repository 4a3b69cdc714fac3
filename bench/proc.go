package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procField returns the number after key in a /proc file of "Key: N kB"
// lines (meminfo, status).
func procField(path, key string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, key) {
			continue
		}
		fields := strings.Fields(line[len(key):])
		if len(fields) == 0 {
			return 0, false
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		return n, err == nil
	}
	return 0, false
}

// rssBytes returns the resident set size of process pid (VmRSS).
func rssBytes(pid int) (int64, error) {
	kb, ok := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	if !ok {
		return 0, fmt.Errorf("read VmRSS of process %d", pid)
	}
	return kb * 1024, nil
}

// procStat returns the state letter and the CPU time (user + system) of
// process pid from /proc/<pid>/stat.
func procStat(pid int) (state byte, cpu time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read stat of process %d: %w", pid, err)
	}
	// The command name is in parentheses and may hold spaces: the fields
	// after its closing parenthesis are state (3), ..., utime (14), stime (15).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse stat of process %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("parse stat of process %d: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("parse cpu times of process %d", pid)
	}
	return f[0][0], time.Duration(ut+st) * time.Second / clockTicks, nil
}

// listenOverflows returns the system's count of connections dropped
// because a listen queue was full (TcpExt ListenOverflows), -1 when it
// cannot be read.
func listenOverflows() int64 {
	b, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		return -1
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "TcpExt:") || !strings.HasPrefix(lines[i+1], "TcpExt:") {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if n == "ListenOverflows" && j < len(values) {
				v, err := strconv.ParseInt(values[j], 10, 64)
				if err == nil {
					return v
				}
			}
		}
	}
	return -1
}

// cpuTime returns the CPU time (user + system) process pid has used, 0
// when it cannot be read.
func cpuTime(pid int) time.Duration {
	_, cpu, err := procStat(pid)
	if err != nil {
		return 0
	}
	return cpu
}

// cpuMeter measures the CPU time of a set of processes over a run.
type cpuMeter struct {
	pids   []int
	before []time.Duration
}

func startCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids}
	for _, p := range pids {
		m.before = append(m.before, cpuTime(p))
	}
	return m
}

// used returns the CPU time each process used since startCPU.
func (m *cpuMeter) used() []time.Duration {
	out := make([]time.Duration, len(m.pids))
	for i, p := range m.pids {
		out[i] = cpuTime(p) - m.before[i]
	}
	return out
}

// cpuPercent measures the CPU use of process pid over window, as a
// percentage of one core.
func cpuPercent(pid int, window time.Duration, wait func(time.Duration) error) (float64, error) {
	_, before, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := wait(window); err != nil {
		return 0, err
	}
	_, after, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return 100 * (after - before).Seconds() / time.Since(start).Seconds(), nil
}
