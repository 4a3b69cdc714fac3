package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// ingestCPU measures, over a run, the CPU time of this process (ingest,
// and NATS when it is embedded) and of the local PostgreSQL server's
// processes, so that ingest's cost per row can be compared between runs on
// a machine whose load varies: rows/s follow the share of the CPU a run
// gets, CPU per row much less.
type ingestCPU struct {
	self time.Duration
	pg   map[int]time.Duration // postgres processes: CPU at the start
}

// postgresCPU returns the CPU time of every process named postgres.
func postgresCPU() map[int]time.Duration {
	out := map[int]time.Duration{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "postgres" {
			continue
		}
		if _, cpu, err := procStat(pid); err == nil {
			out[pid] = cpu
		}
	}
	return out
}

func startIngestCPU() *ingestCPU {
	return &ingestCPU{self: cpuTime(os.Getpid()), pg: postgresCPU()}
}

// used returns the CPU time this process and the PostgreSQL processes
// used since the start (a process started since counts in full).
func (m *ingestCPU) used() (self, pg time.Duration) {
	self = cpuTime(os.Getpid()) - m.self
	for pid, cpu := range postgresCPU() {
		pg += cpu - m.pg[pid]
	}
	return self, pg
}
