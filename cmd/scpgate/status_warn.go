//go:build !driveronly

package main

import (
	"fmt"

	"github.com/scpgate/scpgate/streams"
)

// defaultWarnFull is the fullness of a stream from which `scpgate status`
// warns; the Prometheus rule ScpgateEventsStreamNearlyFull fires at the
// same level.
const defaultWarnFull = 0.8

// statusWarnings returns what an operator should act on soon: a stream
// with a size limit at least warnFull full (SCP_EVENTS discards its oldest
// events once full), and an ingest backlog that holds half of a nearly
// full SCP_EVENTS (its oldest unread events are next to be discarded).
// warnFull 0 means defaultWarnFull.
func statusWarnings(st Status, warnFull float64) []string {
	if warnFull <= 0 {
		warnFull = defaultWarnFull
	}
	var out []string
	var events *StreamStatus
	for i, s := range st.Streams {
		if s.Name == streams.EventsStream {
			events = &st.Streams[i]
		}
		if s.MaxBytes > 0 && s.Fullness >= warnFull {
			out = append(out, fmt.Sprintf("%s is %.0f%% full (%s of %s): once full, its oldest messages are discarded; raise SCPGATE_EVENTS_MAX_BYTES and the server's max_file_store, or shorten SCPGATE_EVENTS_MAX_AGE",
				s.Name, 100*s.Fullness, humanBytes(s.Bytes), humanBytes(uint64(s.MaxBytes))))
		}
	}
	if events == nil || events.MaxBytes <= 0 || events.Fullness < warnFull || events.Messages == 0 {
		return out
	}
	for _, l := range st.Ingest {
		if l.Stream == streams.EventsStream && 2*l.NumPending >= events.Messages {
			out = append(out, fmt.Sprintf("ingest consumer %s has %d unread events, %.0f%% of %s, which is %.0f%% full: its oldest unread events will be discarded before ingest stores them unless it catches up",
				l.Consumer, l.NumPending, 100*float64(l.NumPending)/float64(events.Messages), events.Name, 100*events.Fullness))
		}
	}
	return out
}
