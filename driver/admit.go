package driver

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/scpgate/scpgate/scpbridge"
	"github.com/scpgate/scpgate/streams"
)

// CertMatchesSerial reports whether the identity of a controller's client
// certificate is serial. It is, when serial equals exactly (case matters,
// as in subjects) one of:
//   - the subject common name;
//   - a DNS SAN;
//   - a URI SAN's last element: the part after the last ':' of an opaque
//     URI (urn:scpgate:controller:SERIAL), else the last path segment
//     (spiffe://example.org/controller/SERIAL), else the host
//     (scp://SERIAL).
func CertMatchesSerial(cert *x509.Certificate, serial string) bool {
	if cert == nil || serial == "" {
		return false
	}
	if cert.Subject.CommonName == serial {
		return true
	}
	for _, n := range cert.DNSNames {
		if n == serial {
			return true
		}
	}
	for _, u := range cert.URIs {
		var last string
		switch {
		case u.Opaque != "":
			last = u.Opaque[strings.LastIndexByte(u.Opaque, ':')+1:]
		case strings.Trim(u.Path, "/") != "":
			p := strings.TrimRight(u.Path, "/")
			last = p[strings.LastIndexByte(p, '/')+1:]
		default:
			last = u.Host
		}
		if last == serial {
			return true
		}
	}
	return false
}

// certAdmits checks the TLS client certificate of the session against its
// serial (Options.RequireCertSerial). The TLS handshake is complete: the
// hello was read through it.
func (s *session) certAdmits() bool {
	tc, ok := s.conn.(*tls.Conn)
	if !ok {
		return false
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		if s.d.opts.TLS.ClientAuth == tls.VerifyClientCertIfGiven {
			return true
		}
		s.log.Warn().Msg("no client certificate")
		return false
	}
	cert := st.PeerCertificates[0]
	if CertMatchesSerial(cert, s.serial) {
		return true
	}
	uris := make([]string, len(cert.URIs))
	for i, u := range cert.URIs {
		uris[i] = u.String()
	}
	s.log.Warn().Str("cert_cn", cert.Subject.CommonName).Strs("cert_dns", cert.DNSNames).Strs("cert_uris", uris).
		Msg("client certificate identity differs from the serial")
	return false
}

// secretAdmits checks the hello's shared secret (Options.CheckSecret),
// then forgets it. A serial whose secret matched is vouched for: it is
// not held as an unknown serial.
func (s *session) secretAdmits() bool {
	hello := &s.loop.hs.Hello
	secret := hello.Secret
	hello.Secret = ""
	if s.d.opts.CheckSecret == nil {
		return true
	}
	listed, ok := s.d.opts.CheckSecret(s.serial, secret)
	if !ok {
		s.d.stats.badSecrets.Add(1)
		s.log.Warn().Bool("secret_sent", secret != "").Msg("shared secret missing or wrong")
		return false
	}
	s.vouched = listed
	return true
}

// admit runs the hello's admission checks, in the order of the package
// documentation (Admission), and says why a hello is refused.
func (s *session) admit() (why scpbridge.RejectReason, text string, ok bool) {
	if err := streams.ValidSerial(s.serial); err != nil {
		return scpbridge.RejectBadSerial, err.Error(), false
	}
	if s.d.opts.RequireCertSerial && !s.certAdmits() {
		return scpbridge.RejectCertificateMismatch, "certificate identity differs from the serial", false
	}
	if s.d.opts.Admit != nil && !s.d.opts.Admit(s.serial) {
		return scpbridge.RejectNotAllowed, "serial not admitted", false
	}
	if !s.secretAdmits() {
		return scpbridge.RejectNotAllowed, "secret missing or wrong", false
	}
	if !s.d.nc.IsConnected() {
		// Sessions already open stay open and stop being acknowledged; a
		// new one is better served by a driver that can store its events.
		return scpbridge.RejectUnavailable, "event store unavailable", false
	}
	if s.d.full(s.serial) {
		return scpbridge.RejectBusy, "driver at its session cap", false
	}
	return s.admitIdentity()
}
