package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/streams"
)

// MinSecretLen and MaxSecretLen bound a controller's shared secret
// (protocol 1.1 hello: printable ASCII, at most 64 bytes).
const (
	MinSecretLen = 16
	MaxSecretLen = 64
)

// Secrets are the shared secrets of controllers, read from a file: one
// controller per line, "SERIAL SECRET" or "SERIAL sha256:HEX" (the
// SHA-256 of the secret, so that the file need not hold the secret
// itself); '#' starts a comment. A serial listed must send its secret in
// its hello (protocol 1.1); a serial not listed is not asked for one.
// Check is lock-free; Reload swaps the whole set.
type Secrets struct {
	path  string
	log   zerolog.Logger
	set   atomic.Pointer[map[string][sha256.Size]byte]
	mu    sync.Mutex // serializes Reload; guards stamp
	stamp fileStamp
}

// LoadSecrets reads the secrets file at path. A line that is not valid
// fails the load: a controller would be left without its secret.
func LoadSecrets(path string, log zerolog.Logger) (*Secrets, error) {
	s := &Secrets{path: path, log: log.With().Str("secrets", path).Logger()}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the file again and replaces the set. On error the previous
// set stays in force.
func (s *Secrets) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := stampOf(s.path)
	lines, err := readLines(s.path)
	if err != nil {
		return fmt.Errorf("read controller secrets: %w", err)
	}
	set := make(map[string][sha256.Size]byte, len(lines))
	for i, line := range lines {
		serial, secret, ok := strings.Cut(line, " ")
		secret = strings.TrimSpace(secret)
		if !ok || secret == "" {
			return fmt.Errorf("controller secrets line %d: want SERIAL SECRET", i+1)
		}
		if err := streams.ValidSerial(serial); err != nil {
			return fmt.Errorf("controller secrets line %d: %w", i+1, err)
		}
		sum, err := secretSum(secret)
		if err != nil {
			return fmt.Errorf("controller secrets line %d (%s): %w", i+1, serial, err)
		}
		set[serial] = sum
	}
	s.set.Store(&set)
	s.stamp = st
	s.log.Info().Int("controllers", len(set)).Msg("controller secrets loaded")
	return nil
}

// secretSum returns the SHA-256 of a secret written in the file.
func secretSum(v string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if h, ok := strings.CutPrefix(v, "sha256:"); ok {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != sha256.Size {
			return sum, fmt.Errorf("sha256: want %d hex digits", 2*sha256.Size)
		}
		copy(sum[:], b)
		return sum, nil
	}
	if len(v) < MinSecretLen || len(v) > MaxSecretLen {
		return sum, fmt.Errorf("secret of %d bytes, want %d to %d", len(v), MinSecretLen, MaxSecretLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x21 || v[i] > 0x7e {
			return sum, fmt.Errorf("secret byte %d is not printable ASCII", i)
		}
	}
	return sha256.Sum256([]byte(v)), nil
}

// Check reports whether serial may use secret: true for a serial without
// a secret in the file, else whether secret is its secret (compared in
// constant time). It is the driver's Options.CheckSecret.
func (s *Secrets) Check(serial, secret string) (listed, ok bool) {
	want, listed := (*s.set.Load())[serial]
	if !listed {
		return false, true
	}
	got := sha256.Sum256([]byte(secret))
	return true, subtle.ConstantTimeCompare(got[:], want[:]) == 1 && secret != ""
}

// Len returns the number of controllers with a secret.
func (s *Secrets) Len() int { return len(*s.set.Load()) }

// Watch reloads the file on SIGHUP and when it changes (see
// AllowList.Watch) until ctx ends.
func (s *Secrets) Watch(ctx context.Context, interval time.Duration) {
	current := func() fileStamp {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stamp
	}
	watchFile(ctx, interval, func() bool { return changed(current(), s.path) }, func() {
		if err := s.Reload(); err != nil {
			s.log.Error().Err(err).Msg("controller secrets reload failed; keeping the previous secrets")
		}
	})
}
