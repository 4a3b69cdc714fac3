package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/sqlite"
	"github.com/scpgate/scpgate/storetest"
)

func open(t *testing.T) scpgate.Store {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

func BenchmarkWriteBatch(b *testing.B) {
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatalf("open: %v", err)
	}
	defer s.Close()
	storetest.BenchWriteBatch(b, s)
}
