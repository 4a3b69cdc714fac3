package sim

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	sb "github.com/scpgate/scpgate/scpbridge"
)

// Histogram buckets: values in microseconds; below histSub each value has
// its own bucket, above it every power of two is split into histSub
// buckets (about 3% wide). The last bucket holds everything from about
// 4.7 hours up.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histMaxExp  = 34 // 2^34 µs ≈ 4.8 h
	histBuckets = (histMaxExp-histSubBits+1)*histSub + histSub
)

// Histogram counts durations in buckets about 3% wide, from 1 µs to hours.
// It is safe for concurrent use and cheap enough (one atomic add) to record
// every transaction of a fleet. The zero value is ready to use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
}

// histBucket returns the bucket of a value in microseconds.
func histBucket(us uint64) int {
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - 1 - histSubBits
	b := shift*histSub + int(us>>uint(shift))
	return min(b, histBuckets-1)
}

// histLower returns the smallest value (µs) of bucket b.
func histLower(b int) uint64 {
	if b < 2*histSub {
		return uint64(b)
	}
	shift := b/histSub - 1
	return uint64(b-shift*histSub) << uint(shift)
}

// Record counts one duration.
func (h *Histogram) Record(d time.Duration) { h.RecordN(d, 1) }

// RecordN counts n observations of the duration d (negative counts as 0).
func (h *Histogram) RecordN(d time.Duration, n uint64) {
	if n == 0 {
		return
	}
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[histBucket(us)].Add(n)
}

// Reset clears the counts.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

// Snapshot returns the current counts.
func (h *Histogram) Snapshot() HistogramSnapshot {
	c := make([]uint64, histBuckets)
	last := -1
	for i := range h.counts {
		if c[i] = h.counts[i].Load(); c[i] > 0 {
			last = i
		}
	}
	return HistogramSnapshot{Counts: c[:last+1]}
}

// HistogramSnapshot is a copy of a Histogram's counts, in a form that
// travels as JSON and adds up over processes.
type HistogramSnapshot struct {
	// Counts holds the bucket counts, trailing empty buckets left out.
	Counts []uint64 `json:"counts"`
}

// Merge adds o's counts to s.
func (s *HistogramSnapshot) Merge(o HistogramSnapshot) {
	if len(o.Counts) > len(s.Counts) {
		s.Counts = append(s.Counts, make([]uint64, len(o.Counts)-len(s.Counts))...)
	}
	for i, n := range o.Counts {
		s.Counts[i] += n
	}
}

// Total returns the number of observations.
func (s HistogramSnapshot) Total() uint64 {
	var t uint64
	for _, n := range s.Counts {
		t += n
	}
	return t
}

// Quantile returns the duration below which a fraction q (0..1) of the
// observations fall: the middle of the bucket holding it, so within about
// 2% of the true value. It returns 0 when there are no observations.
func (s HistogramSnapshot) Quantile(q float64) time.Duration {
	total := s.Total()
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	var seen uint64
	for b, n := range s.Counts {
		seen += n
		if seen >= rank {
			lo, hi := histLower(b), histLower(b+1)
			return time.Duration(lo+(hi-lo)/2) * time.Microsecond
		}
	}
	return 0
}

// Mean returns the mean observation, from bucket middles.
func (s HistogramSnapshot) Mean() time.Duration {
	var total, sum float64
	for b, n := range s.Counts {
		lo, hi := histLower(b), histLower(b+1)
		total += float64(n)
		sum += float64(n) * float64(lo+(hi-lo)/2)
	}
	if total == 0 {
		return 0
	}
	return time.Duration(sum/total) * time.Microsecond
}

// sentBatch is a run of transactions written to the host at one time,
// awaiting the ack that covers them (for Config.AckLatency).
type sentBatch struct {
	first, last uint32
	at          time.Time
}

// sentTransactions remembers that serials first..last were written at.
func (l *link) sentTransactions(first, last uint32, at time.Time) {
	if l.c.cfg.AckLatency == nil || last < first {
		return
	}
	l.sent = append(l.sent, sentBatch{first: first, last: last, at: at})
}

// ackedTransactions records the latency of every sent transaction the
// cumulative ack up to seq covers.
func (l *link) ackedTransactions(seq uint32, now time.Time) {
	h := l.c.cfg.AckLatency
	if h == nil {
		return
	}
	n := 0
	for n < len(l.sent) {
		b := &l.sent[n]
		if b.first > seq {
			break
		}
		d := now.Sub(b.at)
		if b.last <= seq {
			h.RecordN(d, uint64(b.last-b.first)+1)
			n++
			continue
		}
		h.RecordN(d, uint64(seq-b.first)+1)
		b.first = seq + 1
		break
	}
	l.sent = l.sent[:copy(l.sent, l.sent[n:])]
}

// Pattern returns transaction number i of the deterministic mix that
// Controller.Generate logs, with serial seq and time now, for a controller
// configured by cfg: what a benchmark publishes straight to JetStream to
// compare with a fleet sending the same transactions.
func Pattern(cfg *Config, i uint64, seq uint32, now time.Time) sb.Transaction {
	c := *cfg
	if c.Doors <= 0 || c.Inputs <= 0 || c.Outputs <= 0 {
		c = c.WithDefaults()
	}
	e := patterned(&c, i, now)
	var t sb.Transaction
	e.fill(&t, seq)
	return t
}
