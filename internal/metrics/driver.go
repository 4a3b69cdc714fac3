package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/scpbridge"
)

// DriverSource is what the driver collector reads at scrape time;
// *driver.Driver is one.
type DriverSource interface {
	Stats() driver.Stats
	CommandStats() driver.CommandStats
}

var _ DriverSource = (*driver.Driver)(nil)

// rejectReasons are reported from the start, zeros included.
var rejectReasons = []scpbridge.RejectReason{
	scpbridge.RejectNotAllowed, scpbridge.RejectBadSerial, scpbridge.RejectUnsupportedVersion,
	scpbridge.RejectBusy, scpbridge.RejectDraining, scpbridge.RejectCertificateMismatch,
	scpbridge.RejectUnavailable,
}

// driverCollector turns driver.Stats and driver.CommandStats into metrics.
type driverCollector struct {
	src DriverSource

	sessions, inflight, draining, delivering   *prometheus.Desc
	connects, established, closes, rejects     *prometheus.Desc
	received, published, duplicate, acked      *prometheus.Desc
	ackFrames, pubErrors, republished, stale   *prometheus.Desc
	deferred, presenceErrors, unknownFrames    *prometheus.Desc
	commands, cmdSent, cmdResent, cmdConflicts *prometheus.Desc
	cmdUnknown, cmdDoorbells, cmdErrors        *prometheus.Desc
	cmdUnanswered, cmdTaken, cmdHintOverflows  *prometheus.Desc
	cmdBusyRetries, cmdStaleReads              *prometheus.Desc
	cmdDrainUnanswered, cmdStreamRecreated     *prometheus.Desc
}

// RegisterDriver adds the driver's metrics, read from src at every scrape:
//
//	scpgate_driver_sessions                      gauge: established sessions
//	scpgate_driver_inflight                      gauge: unconfirmed transactions
//	scpgate_driver_draining                      gauge: 1 while draining
//	scpgate_driver_connects_total                accepted connections
//	scpgate_driver_sessions_established_total    handshakes completed
//	scpgate_driver_closes_total{reason}          closed connections by close reason
//	scpgate_driver_rejects_total{reason}         refused handshakes by reject reason
//	scpgate_driver_events_received_total         transactions read from controllers
//	scpgate_driver_events_published_total        transactions JetStream confirmed
//	scpgate_driver_events_duplicate_total        of which duplicates
//	scpgate_driver_events_acked_total            transactions acknowledged to controllers
//	scpgate_driver_ack_frames_total              ack frames sent
//	scpgate_driver_publish_errors_total          failed publish attempts (retried)
//	scpgate_driver_republished_total             publish retries
//	scpgate_driver_stale_pubacks_total           PubAcks that came after their publish was given up
//	scpgate_driver_events_deferred_total         transactions left to the next driver while draining
//	scpgate_driver_presence_errors_total         failed presence writes (retried)
//	scpgate_driver_unknown_frames_total          skipped frames of unknown types
//	scpgate_driver_commands_total{status}        command results published: ok, nak, failed, expired
//	scpgate_driver_commands_sent_total           command frames sent to controllers
//	scpgate_driver_commands_resent_total         of which sent again after a reconnect
//	scpgate_driver_command_cursor_conflicts_total
//	scpgate_driver_command_unknown_statuses_total
//	scpgate_driver_command_doorbells_total       new commands (hints) routed to a session
//	scpgate_driver_commands_taken_total{from}    pending commands taken: from=hint (no read) or stream (read)
//	scpgate_driver_command_hint_overflows_total  sessions that dropped their hints and read the stream
//	scpgate_driver_commands_unanswered_total     commands failed for no status within the answer timeout
//	scpgate_driver_command_errors_total          failed NATS operations of delivery (retried)
//	scpgate_driver_command_busy_retries_total    commands sent again after a NAK busy
//	scpgate_driver_command_stale_reads_total     empty queue reads of a lagging replica, corrected by the leader
//	scpgate_driver_command_drain_unanswered_total draining sessions released with commands unanswered
//	scpgate_driver_command_stream_recreated_total times SCP_COMMANDS was found re-created
//	scpgate_driver_commands_delivering           gauge: sessions with delivery state
//
// and those of driverSecurityCollector and registerDriverStore.
func RegisterDriver(reg prometheus.Registerer, src DriverSource) error {
	if err := reg.Register(newDriverSecurityCollector(src)); err != nil {
		return err
	}
	if err := registerDriverStore(reg, src); err != nil {
		return err
	}
	return reg.Register(&driverCollector{
		src:              src,
		sessions:         desc("driver_sessions", "Established controller sessions."),
		inflight:         desc("driver_inflight", "Transactions read and not yet confirmed by JetStream."),
		draining:         desc("driver_draining", "1 while the driver drains, else 0."),
		delivering:       desc("driver_commands_delivering", "Sessions holding command delivery state."),
		connects:         desc("driver_connects_total", "Accepted controller connections."),
		established:      desc("driver_sessions_established_total", "Connections that completed the handshake."),
		closes:           desc("driver_closes_total", "Closed controller connections by reason.", "reason"),
		rejects:          desc("driver_rejects_total", "Refused handshakes by reject reason.", "reason"),
		received:         desc("driver_events_received_total", "Transactions read from controllers."),
		published:        desc("driver_events_published_total", "Transactions JetStream confirmed (stored or duplicate)."),
		duplicate:        desc("driver_events_duplicate_total", "Transactions JetStream recognised as duplicates."),
		acked:            desc("driver_events_acked_total", "Transactions acknowledged to controllers."),
		ackFrames:        desc("driver_ack_frames_total", "Ack frames sent to controllers."),
		pubErrors:        desc("driver_publish_errors_total", "Failed publish attempts (each is retried)."),
		republished:      desc("driver_republished_total", "Publish retries."),
		stale:            desc("driver_stale_pubacks_total", "PubAcks that matched no publish in flight (it timed out or failed and was republished)."),
		deferred:         desc("driver_events_deferred_total", "Transactions left for the next driver while draining."),
		presenceErrors:   desc("driver_presence_errors_total", "Failed scp_sessions writes and presence publishes."),
		unknownFrames:    desc("driver_unknown_frames_total", "Skipped frames of unknown types."),
		commands:         desc("driver_commands_total", "Command results published by status.", "status"),
		cmdSent:          desc("driver_commands_sent_total", "Command frames sent to controllers."),
		cmdResent:        desc("driver_commands_resent_total", "Command frames sent again after a reconnect."),
		cmdConflicts:     desc("driver_command_cursor_conflicts_total", "Compare-and-set failures on scp_cursors."),
		cmdUnknown:       desc("driver_command_unknown_statuses_total", "Command statuses naming no outstanding command."),
		cmdDoorbells:     desc("driver_command_doorbells_total", "New commands (hints) routed to a session."),
		cmdErrors:        desc("driver_command_errors_total", "Failed NATS operations of command delivery."),
		cmdUnanswered:    desc("driver_commands_unanswered_total", "Commands failed for no status within the answer timeout (also counted failed)."),
		cmdTaken:         desc("driver_commands_taken_total", "Pending commands taken for delivery, from hints (no read) or read from the stream.", "from"),
		cmdHintOverflows: desc("driver_command_hint_overflows_total", "Hint buffers of a session that filled; the session read the stream instead."),
		cmdBusyRetries:   desc("driver_command_busy_retries_total", "Commands sent again after the controller answered NAK busy."),
		cmdStaleReads:    desc("driver_command_stale_reads_total", "Queue reads a replica answered empty while the stream leader held a command."),
		cmdDrainUnanswered: desc("driver_command_drain_unanswered_total",
			"Draining sessions released with commands still unanswered after the drain answer wait."),
		cmdStreamRecreated: desc("driver_command_stream_recreated_total", "Times SCP_COMMANDS was found re-created."),
	})
}

func (c *driverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.sessions, c.inflight, c.draining, c.delivering, c.connects, c.established, c.closes, c.rejects,
		c.received, c.published, c.duplicate, c.acked, c.ackFrames, c.pubErrors, c.republished, c.stale,
		c.deferred, c.presenceErrors, c.unknownFrames, c.commands, c.cmdSent, c.cmdResent,
		c.cmdConflicts, c.cmdUnknown, c.cmdDoorbells, c.cmdErrors,
		c.cmdUnanswered, c.cmdTaken, c.cmdHintOverflows,
		c.cmdBusyRetries, c.cmdStaleReads, c.cmdDrainUnanswered, c.cmdStreamRecreated,
	} {
		ch <- d
	}
}

func (c *driverCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	gauge(ch, c.sessions, float64(st.Sessions))
	gauge(ch, c.inflight, float64(st.Inflight))
	draining := 0.0
	if st.Draining {
		draining = 1
	}
	gauge(ch, c.draining, draining)
	counter(ch, c.connects, st.Connects)
	counter(ch, c.established, st.Established)
	reasons := make([]scpgate.CloseReason, 0, len(st.Closes))
	for r := range st.Closes {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		counter(ch, c.closes, st.Closes[r], string(r))
	}
	seen := make(map[string]bool, len(rejectReasons))
	for _, r := range rejectReasons {
		seen[r.String()] = true
		counter(ch, c.rejects, st.Rejected(r), r.String())
	}
	for name, n := range st.Rejects {
		if !seen[name] {
			counter(ch, c.rejects, n, name)
		}
	}
	counter(ch, c.received, st.EventsReceived)
	counter(ch, c.published, st.EventsPublished)
	counter(ch, c.duplicate, st.EventsDuplicate)
	counter(ch, c.acked, st.EventsAcked)
	counter(ch, c.ackFrames, st.AckFrames)
	counter(ch, c.pubErrors, st.PublishErrors)
	counter(ch, c.republished, st.Republished)
	counter(ch, c.stale, st.StalePubAcks)
	counter(ch, c.deferred, st.EventsDeferred)
	counter(ch, c.presenceErrors, st.PresenceErrors)
	counter(ch, c.unknownFrames, st.UnknownFrames)

	cs := c.src.CommandStats()
	counter(ch, c.commands, cs.OK, "ok")
	counter(ch, c.commands, cs.NAK, "nak")
	counter(ch, c.commands, cs.Failed, "failed")
	counter(ch, c.commands, cs.Expired, "expired")
	counter(ch, c.cmdSent, cs.Sent)
	counter(ch, c.cmdResent, cs.Resent)
	counter(ch, c.cmdConflicts, cs.CursorConflicts)
	counter(ch, c.cmdUnknown, cs.UnknownStatuses)
	counter(ch, c.cmdDoorbells, cs.Doorbells)
	counter(ch, c.cmdErrors, cs.Errors)
	counter(ch, c.cmdUnanswered, cs.Unanswered)
	counter(ch, c.cmdTaken, cs.Hinted, "hint")
	counter(ch, c.cmdTaken, cs.Fetched, "stream")
	counter(ch, c.cmdHintOverflows, cs.HintOverflows)
	counter(ch, c.cmdBusyRetries, cs.BusyRetries)
	counter(ch, c.cmdStaleReads, cs.StaleReads)
	counter(ch, c.cmdDrainUnanswered, cs.DrainUnanswered)
	counter(ch, c.cmdStreamRecreated, cs.StreamRecreated)
	gauge(ch, c.delivering, float64(cs.Delivering))
}

// PublishLatencyBuckets are the buckets of the publish latency histogram,
// in seconds: 250 µs to about 8 s.
var PublishLatencyBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

// NewPublishLatency registers scpgate_driver_publish_latency_seconds, the
// time from handing a transaction to NATS to its PubAck, and returns the
// observer to set as driver.Options.PublishLatency.
func NewPublishLatency(reg prometheus.Registerer) (func(time.Duration), error) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "driver_publish_latency_seconds",
		Help:      "Time from publishing a transaction to its PubAck from JetStream.",
		Buckets:   PublishLatencyBuckets,
	})
	if err := reg.Register(h); err != nil {
		return nil, err
	}
	return func(d time.Duration) { h.Observe(d.Seconds()) }, nil
}
