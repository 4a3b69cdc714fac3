package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/internal/auth"
	"github.com/scpgate/scpgate/internal/natstest"
)

func TestSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	sum := sha256.Sum256([]byte("hashed-secret-of-B2"))
	writeFile(t, path, "# fleet\nA1 plain-secret-of-A1  # lobby\n\nB2 sha256:"+hex.EncodeToString(sum[:])+"\n")
	s, err := auth.LoadSecrets(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		serial, secret string
		listed, ok     bool
	}{
		{"A1", "plain-secret-of-A1", true, true},
		{"A1", "plain-secret-of-A2", true, false},
		{"A1", "", true, false},
		{"B2", "hashed-secret-of-B2", true, true},
		{"B2", "sha256:" + hex.EncodeToString(sum[:]), true, false},
		{"C3", "", false, true},
		{"C3", "anything", false, true},
	} {
		if listed, ok := s.Check(tc.serial, tc.secret); listed != tc.listed || ok != tc.ok {
			t.Errorf("Check(%s, %q) = %v, %v; want %v, %v", tc.serial, tc.secret, listed, ok, tc.listed, tc.ok)
		}
	}

	for _, bad := range []string{
		"A1\n", "A1 short\n", "bad! serial-secret-long-enough\n", "A1 sha256:abcd\n",
		"A1 " + string(make([]byte, 65)) + "\n",
	} {
		p := filepath.Join(t.TempDir(), "bad")
		writeFile(t, p, bad)
		if _, err := auth.LoadSecrets(p, zerolog.Nop()); err == nil {
			t.Errorf("secrets file %q loaded", bad)
		}
	}

	// Changed in place: reloaded; broken: the previous secrets stay.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Watch(ctx, 10*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()
	writeFile(t, path, "A1 new-secret-of-A1-rotated\n")
	natstest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if _, ok := s.Check("A1", "new-secret-of-A1-rotated"); !ok || s.Len() != 1 {
			return fmt.Errorf("not reloaded (%d secrets)", s.Len())
		}
		return nil
	})
	writeFile(t, path, "A1 x\nB2 y\n")
	if err := s.Reload(); err == nil {
		t.Error("a broken file reloaded")
	}
	if _, ok := s.Check("A1", "new-secret-of-A1-rotated"); !ok {
		t.Error("a broken file replaced the secrets")
	}
}
