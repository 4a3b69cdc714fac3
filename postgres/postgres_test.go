package postgres_test

import (
	"testing"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/postgres/pgtest"
	"github.com/scpgate/scpgate/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) scpgate.Store { return pgtest.Open(t) })
}

func BenchmarkWriteBatch(b *testing.B) {
	storetest.BenchWriteBatch(b, pgtest.Open(b))
}
