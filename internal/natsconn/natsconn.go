// Package natsconn opens the NATS connection of an scpgate service from
// the NATS ecosystem's usual environment variables (NATS_URL, NATS_CREDS,
// ...), reconnecting forever and logging every change of state.
package natsconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Config says where NATS is and how to authenticate. It is read from the
// environment with envconfig; the variable names are those of the nats CLI
// and the NATS client libraries, with or without a service prefix.
type Config struct {
	// URL is one server URL or a comma-separated list of them.
	URL string `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma-separated"`
	// Creds is the path of a .creds file (JWT and nkey seed).
	Creds string `envconfig:"NATS_CREDS" desc:"path of a NATS credentials file"`
	// User and Password authenticate with a user name and password.
	User     string `envconfig:"NATS_USER" desc:"NATS user name"`
	Password string `envconfig:"NATS_PASSWORD" desc:"NATS password"`
	// TLSCert and TLSKey are a client certificate and its key (PEM files).
	TLSCert string `envconfig:"NATS_TLS_CERT" desc:"client certificate (PEM file)"`
	TLSKey  string `envconfig:"NATS_TLS_KEY" desc:"client certificate key (PEM file)"`
	// TLSCA is a CA bundle (PEM file) to verify the servers with.
	TLSCA string `envconfig:"NATS_TLS_CA" desc:"CA certificates to verify the server (PEM file)"`
}

// Connection behaviour. The client reconnects forever: a service never
// gives up on NATS, it stops acknowledging until NATS is back.
const (
	// ReconnectWait is the pause between reconnect attempts to one server.
	ReconnectWait = 250 * time.Millisecond
	// ReconnectJitter is the random delay added to ReconnectWait
	// (ReconnectJitterTLS for TLS connections) so that many clients do not
	// reconnect in step.
	ReconnectJitter    = 250 * time.Millisecond
	ReconnectJitterTLS = time.Second
	// PingInterval and MaxPingsOut detect a dead server connection within
	// about PingInterval × MaxPingsOut.
	PingInterval = 10 * time.Second
	MaxPingsOut  = 3
)

// ErrInvalidConfig is returned (wrapped) when a Config combines settings
// that cannot work together.
var ErrInvalidConfig = errors.New("invalid NATS config")

// ConfigFromEnv reads a Config from the environment: NATS_URL,
// NATS_CREDS, NATS_USER, NATS_PASSWORD, NATS_TLS_CERT, NATS_TLS_KEY,
// NATS_TLS_CA.
func ConfigFromEnv() (Config, error) {
	var cfg Config
	if err := envconfig.Process("", &cfg); err != nil {
		return Config{}, fmt.Errorf("read NATS environment: %w", err)
	}
	return cfg, nil
}

// Validate reports settings that cannot work together.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.URL) == "":
		return fmt.Errorf("%w: NATS_URL is empty", ErrInvalidConfig)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("%w: NATS_TLS_CERT and NATS_TLS_KEY must be set together", ErrInvalidConfig)
	case c.Creds != "" && c.User != "":
		return fmt.Errorf("%w: set NATS_CREDS or NATS_USER, not both", ErrInvalidConfig)
	case c.Password != "" && c.User == "":
		return fmt.Errorf("%w: NATS_PASSWORD is set without NATS_USER", ErrInvalidConfig)
	}
	return nil
}

// Options returns the nats.Options of cfg for a client called name, logging
// to log. The inbox prefix is that of the name's role (see RoleOf). Connect uses them; they are exported for callers that build their
// own connection.
func (c Config) Options(name string, log zerolog.Logger) []nats.Option {
	return c.options(name, log, &health{})
}

// health is what the connection's handlers remember for the reports of
// an unreachable NATS.
type health struct {
	lastErr atomic.Pointer[string] // last failed connect or reconnect attempt
}

func (h *health) failed(err error) {
	if err != nil {
		s := err.Error()
		h.lastErr.Store(&s)
	}
}

func (h *health) last() string {
	if s := h.lastErr.Load(); s != nil {
		return *s
	}
	return "no answer yet"
}

func (c Config) options(name string, log zerolog.Logger, h *health) []nats.Option {
	// lastURL is the (redacted) server of the latest connection: the
	// client no longer knows it once disconnected.
	var lastURL atomic.Pointer[string]
	remember := func(nc *nats.Conn) string {
		u := nc.ConnectedUrlRedacted()
		lastURL.Store(&u)
		return u
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(RoleOf(name).InboxPrefix()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWait),
		nats.ReconnectJitter(ReconnectJitter, ReconnectJitterTLS),
		nats.PingInterval(PingInterval),
		nats.MaxPingsOutstanding(MaxPingsOut),
		nats.ConnectHandler(func(nc *nats.Conn) { remember(nc) }),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			ev := log.Warn()
			if err == nil && nc.IsClosed() {
				ev = log.Info()
			}
			if u := lastURL.Load(); u != nil {
				ev = ev.Str("url", *u)
			}
			if err != nil {
				ev = ev.Err(err)
			}
			if nc.IsClosed() {
				ev.Msg("disconnected from NATS")
				return
			}
			ev.Msg("disconnected from NATS; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", remember(nc)).Str("server", nc.ConnectedServerName()).
				Uint64("reconnects", nc.Stats().Reconnects).Msg("reconnected to NATS")
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			h.failed(err)
			log.Debug().Err(err).Msg("NATS reconnect attempt failed")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			ev := log.Info()
			if err := nc.LastError(); err != nil {
				ev = log.Warn().Err(err)
			}
			ev.Msg("NATS connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
				if n, _, perr := sub.Pending(); perr == nil {
					ev = ev.Int("pending_msgs", n)
				}
			}
			ev.Msg("NATS async error")
		}),
	}
	if c.Creds != "" {
		opts = append(opts, nats.UserCredentials(c.Creds))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	return opts
}

// Connect connects to NATS as described by cfg, with the client name name.
// The connection reconnects forever (every ReconnectWait plus jitter) and
// logs disconnects, reconnects, closing and asynchronous errors (such as a
// slow consumer) with their reasons; it never logs passwords, tokens or
// credentials. Its inbox prefix is "_INBOX.<role>", the role taken from
// name (RoleOf: "scpgate-driver" is a driver, "scpgate-status" ops).
// extra options are applied after the defaults, so they can override
// them (nats.RetryOnFailedConnect(true) to wait for a server that is not
// up yet, for instance).
func Connect(cfg Config, name string, log zerolog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &health{}
	opts := append(cfg.options(name, log, h), extra...)
	nc, err := connect(cfg.URL, opts, h)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURLs(cfg.URL), err)
	}
	if nc.IsConnected() {
		log.Info().Str("url", nc.ConnectedUrlRedacted()).Str("server", nc.ConnectedServerName()).
			Str("version", nc.ConnectedServerVersion()).Msg("connected to NATS")
	} else {
		// nats.RetryOnFailedConnect: the first attempt failed and the
		// client keeps trying. Say so now, and again every
		// UnreachableReportEvery until it is connected.
		if e := nc.LastError(); e != nil {
			h.failed(e)
		}
		log.Warn().Str("url", redactURLs(cfg.URL)).Str("error", h.last()).Msg("NATS not reachable; retrying")
	}
	go reportUnreachable(nc, redactURLs(cfg.URL), h, log)
	return nc, nil
}

// connect connects with opts. With nats.RetryOnFailedConnect among them
// it first tries once without, so that the error of a NATS that cannot be
// reached is known (and logged by Connect) at once, then lets the client
// keep trying in the background.
func connect(urls string, opts []nats.Option, h *health) (*nats.Conn, error) {
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		_ = opt(&o)
	}
	if !o.RetryOnFailedConnect {
		return nats.Connect(urls, opts...)
	}
	nc, err := nats.Connect(urls, append(opts[:len(opts):len(opts)], nats.RetryOnFailedConnect(false))...)
	if err == nil {
		return nc, nil
	}
	if errors.Is(err, nats.ErrNoServers) {
		if derr := dialFirst(urls, o.Timeout); derr != nil {
			err = fmt.Errorf("%w: %v", err, derr)
		}
	}
	h.failed(err)
	return nats.Connect(urls, opts...)
}

// dialFirst dials the first server of a comma-separated URL list and
// returns why it cannot be reached (nats.ErrNoServers hides it), or nil.
func dialFirst(list string, timeout time.Duration) error {
	first, _, _ := strings.Cut(list, ",")
	u, err := url.Parse(strings.TrimSpace(first))
	if err != nil || u.Host == "" {
		return nil
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "4222")
	}
	c, err := net.DialTimeout("tcp", host, timeout)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// UnreachableReportEvery is how often a connection that is not connected
// logs that it is still waiting for NATS.
var UnreachableReportEvery = 5 * time.Second

// reportUnreachable logs a warning every UnreachableReportEvery while nc is
// not connected, until it is closed.
func reportUnreachable(nc *nats.Conn, urls string, h *health, log zerolog.Logger) {
	t := time.NewTicker(UnreachableReportEvery)
	defer t.Stop()
	var downSince time.Time
	if !nc.IsConnected() {
		downSince = time.Now()
	}
	for range t.C {
		switch {
		case nc.IsClosed():
			return
		case nc.IsConnected():
			downSince = time.Time{}
			continue
		}
		now := time.Now()
		if downSince.IsZero() {
			downSince = now
		}
		log.Warn().Str("url", urls).Str("error", h.last()).Str("status", nc.Status().String()).
			Dur("down_for", now.Sub(downSince).Round(time.Second)).Msg("NATS still not reachable; retrying")
	}
}

// redactURLs hides the user information of every URL in a comma-separated
// list: a password becomes "xxxxx" and a bare user part (which may be a
// token) is replaced entirely.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil {
			if strings.Contains(p, "@") {
				parts[i] = "(unparsable URL with credentials)"
			}
			continue
		}
		if u.User != nil {
			if _, hasPass := u.User.Password(); hasPass {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx")
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
