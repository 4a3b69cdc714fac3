package driver

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

// Options configure a Driver. The zero value of every field but NATS means
// "use the default"; see [DefaultOptions].
type Options struct {
	// ID names this driver in events, the scp_sessions bucket, logs and the
	// micro service. Default: the host name and six random hex digits.
	ID string
	// Listen is the controller (SCP/TCP) listen address. Default ":3001".
	Listen string
	// Listener, when set, is used instead of listening on Listen (a
	// socket with SO_REUSEPORT shared by several drivers, say). The
	// driver closes it when it stops.
	Listener net.Listener
	// NATS is the connection the driver publishes on. Required. The driver
	// does not close it. It should reconnect forever
	// (nats.MaxReconnects(-1)): while it is down the driver stops
	// acknowledging and keeps its sessions open.
	NATS *nats.Conn
	// Streams sizes the streams and buckets Start ensures.
	Streams streams.Config
	// Timing is the session liveness contract sent in every welcome.
	Timing scpbridge.Timing

	// MaxInflightPerSession bounds the transactions of one session that are
	// read but not yet acknowledged; when it is reached the driver stops
	// reading that socket until JetStream confirms. Default 256.
	MaxInflightPerSession int
	// MaxInflightTotal bounds the unconfirmed transactions of the whole
	// driver (and so the memory they hold). Default 32768.
	MaxInflightTotal int
	// SendQueue bounds the frames waiting for one session's writer. A
	// controller that lets it fill is closed as a slow consumer. Default 128.
	SendQueue int
	// WriteTimeout is the deadline of every socket write. Default 5s.
	WriteTimeout time.Duration
	// WriteBuffer, when > 0, sets the kernel send buffer (SO_SNDBUF) of
	// every controller socket. Default 0: the system's.
	WriteBuffer int
	// ReadBuffer is the size of a session's frame read buffer, taken from
	// a pool while the session has bytes to read (an idle session holds
	// none). Default 512 bytes: every frame but an unusually long text
	// fits.
	ReadBuffer int
	// PublishTimeout bounds the wait for one PubAck; a publish that times
	// out is sent again with the same message id. Default 5s.
	PublishTimeout time.Duration
	// RetryBackoffMax caps the wait between rounds of republishing while
	// NATS fails. Default 2s.
	RetryBackoffMax time.Duration

	// DrainRate is how many controllers per second Drain sends away.
	// Default 500.
	DrainRate float64
	// DrainDeadline bounds Drain; sessions still open then are closed with
	// ReasonShutdown. Default 30s.
	DrainDeadline time.Duration
	// ReconnectAfterMax is the upper bound of the random reconnect_after
	// sent in the bye of a drained session. Default 2s.
	ReconnectAfterMax time.Duration

	// Log receives the driver's logs; each session logs through a child
	// logger with serial, remote and session fields. Default: no logging.
	Log zerolog.Logger
	// TLS, when set, makes the controller listener speak TLS.
	TLS *tls.Config
	// Admit, when set, decides whether a serial may open a session; a
	// refused controller gets a reject (not_allowed). Nil admits all.
	Admit func(serial string) bool
	// CheckSecret, when set, checks the shared secret of a hello
	// (protocol 1.1; "" when none was sent): listed reports whether the
	// serial has a secret, ok whether it may go on (a serial not listed
	// always may). A refused controller gets a reject (not_allowed).
	// auth.Secrets.Check is one. Secrets travel in the clear inside the
	// connection: use them over TLS.
	CheckSecret func(serial, secret string) (listed, ok bool)
	// RequireCertSerial, with TLS, checks the client certificate of every
	// controller against the serial of its hello: a certificate whose
	// identity (see CertMatchesSerial) is not that serial is refused with
	// reject certificate_mismatch. A controller without a certificate is
	// refused too, unless TLS.ClientAuth is tls.VerifyClientCertIfGiven.
	// TLS.ClientAuth must verify certificates (VerifyClientCertIfGiven or
	// RequireAndVerifyClientCert) and TLS.ClientCAs name the CA.
	RequireCertSerial bool
	// MaxSessions, when > 0, caps the established sessions of this
	// driver: a controller over the cap (that this driver does not hold
	// already) is refused with reject busy and a retry_after_ms, so that
	// it reconnects, through the load balancer, to a driver with room.
	// Default 0: no cap.
	MaxSessions int
	// UnknownSerialRate bounds how many serials never seen before
	// (without an allow list: no key in scp_identity and no presence
	// event in SCP_EVENTS) are recorded per
	// second, with their presence events. The sessions of the others run
	// at once, but their presence waits for its turn, oldest first; a
	// session that ends before its turn gets no presence event at all
	// (counted). So a flood of made-up serials that connect and go cannot
	// fill SCP_EVENTS with presence kept for its MaxAge, while a new
	// controller that stays shows up within (waiting serials / rate)
	// seconds. Default 50; negative: no limit.
	UnknownSerialRate float64
	// PublishLatency, when set, is called from the PubAck handler with the
	// time from a transaction's publish to its PubAck. It must be cheap
	// and must not block (a histogram's Observe).
	PublishLatency func(time.Duration)

	// CommandWindow is how many commands one controller may have sent and
	// not yet answered. Default 4.
	CommandWindow int
	// CommandFetchTimeout bounds each NATS operation of command delivery
	// (reading a command, writing its record, cursor and result). Default 5s.
	CommandFetchTimeout time.Duration
	// CommandAnswerTimeout is how long a command sent to a connected
	// controller may wait for its status. Past it the command ends failed,
	// reason "unanswered" (logged and counted), and the controller's queue
	// moves on; a status that comes later is counted as unknown. Commands
	// sent by a session that ended are not affected: the next session
	// sends them again. Default 30s.
	CommandAnswerTimeout time.Duration
	// CommandBusyRetry is how long a command the controller answered NAK
	// busy waits before it is sent again; the wait doubles with every
	// busy answer, up to CommandBusyRetryMax. A command still busy when
	// it expires ends nak, reason busy. Default 1s.
	CommandBusyRetry time.Duration
	// CommandBusyRetryMax bounds the wait between busy retries. Default 30s.
	CommandBusyRetryMax time.Duration
	// DrainAnswerWait bounds how long Drain keeps a released session open
	// for the statuses of commands already sent to it (so the next driver
	// need not send them again). Default 5s; within DrainDeadline.
	DrainAnswerWait time.Duration
}

// Defaults of Options.
const (
	DefaultListen                = ":3001"
	DefaultMaxInflightPerSession = 256
	DefaultMaxInflightTotal      = 32768
	DefaultSendQueue             = 128
	DefaultWriteTimeout          = 5 * time.Second
	DefaultReadBuffer            = 512
	DefaultPublishTimeout        = 5 * time.Second
	DefaultRetryBackoffMax       = 2 * time.Second
	DefaultDrainRate             = 500
	DefaultDrainDeadline         = 30 * time.Second
	DefaultReconnectAfterMax     = 2 * time.Second
	DefaultCommandWindow         = 4
	DefaultCommandFetchTimeout   = 5 * time.Second
	DefaultCommandAnswerTimeout  = 30 * time.Second
	DefaultCommandBusyRetry      = time.Second
	DefaultCommandBusyRetryMax   = 30 * time.Second
	DefaultDrainAnswerWait       = 5 * time.Second
	DefaultUnknownSerialRate     = 50
)

// ErrNoNATS is returned by New when Options.NATS is nil.
var ErrNoNATS = errors.New("driver: no NATS connection")

// DefaultOptions returns Options with every default filled in except NATS.
func DefaultOptions() Options {
	return Options{Streams: streams.DefaultConfig(), Log: zerolog.Nop()}.withDefaults()
}

// withDefaults fills zero fields; it is the one place defaults live.
func (o Options) withDefaults() Options {
	if o.ID == "" {
		o.ID = defaultID()
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.Streams == (streams.Config{}) {
		o.Streams = streams.DefaultConfig()
	}
	o.Timing = o.Timing.WithDefaults()
	if o.MaxInflightPerSession <= 0 {
		o.MaxInflightPerSession = DefaultMaxInflightPerSession
	}
	if o.MaxInflightTotal <= 0 {
		o.MaxInflightTotal = DefaultMaxInflightTotal
	}
	if o.SendQueue <= 0 {
		o.SendQueue = DefaultSendQueue
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = DefaultReadBuffer
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	if o.RetryBackoffMax <= 0 {
		o.RetryBackoffMax = DefaultRetryBackoffMax
	}
	if o.DrainRate <= 0 {
		o.DrainRate = DefaultDrainRate
	}
	if o.DrainDeadline <= 0 {
		o.DrainDeadline = DefaultDrainDeadline
	}
	if o.ReconnectAfterMax <= 0 {
		o.ReconnectAfterMax = DefaultReconnectAfterMax
	}
	if o.CommandWindow <= 0 {
		o.CommandWindow = DefaultCommandWindow
	}
	if o.CommandFetchTimeout <= 0 {
		o.CommandFetchTimeout = DefaultCommandFetchTimeout
	}
	if o.CommandAnswerTimeout <= 0 {
		o.CommandAnswerTimeout = DefaultCommandAnswerTimeout
	}
	if o.CommandBusyRetry <= 0 {
		o.CommandBusyRetry = DefaultCommandBusyRetry
	}
	if o.CommandBusyRetryMax <= 0 {
		o.CommandBusyRetryMax = DefaultCommandBusyRetryMax
	}
	if o.CommandBusyRetryMax < o.CommandBusyRetry {
		o.CommandBusyRetryMax = o.CommandBusyRetry
	}
	if o.DrainAnswerWait <= 0 {
		o.DrainAnswerWait = DefaultDrainAnswerWait
	}
	if o.UnknownSerialRate == 0 {
		o.UnknownSerialRate = DefaultUnknownSerialRate
	}
	return o
}

func (o Options) validate() error {
	if o.NATS == nil {
		return ErrNoNATS
	}
	if err := o.Streams.Validate(); err != nil {
		return fmt.Errorf("driver options: %w", err)
	}
	if o.RequireCertSerial && (o.TLS == nil ||
		o.TLS.ClientAuth != tls.VerifyClientCertIfGiven && o.TLS.ClientAuth != tls.RequireAndVerifyClientCert) {
		return errors.New("driver options: RequireCertSerial needs TLS that verifies client certificates")
	}
	if o.MaxSessions < 0 {
		return fmt.Errorf("driver options: max sessions %d is negative", o.MaxSessions)
	}
	if o.MaxInflightTotal < o.MaxInflightPerSession {
		return fmt.Errorf("driver options: max inflight total %d below per session %d", o.MaxInflightTotal, o.MaxInflightPerSession)
	}
	return nil
}

func defaultID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "driver"
	}
	return host + "-" + randomHex(3)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
