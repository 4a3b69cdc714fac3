package driver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/scpgate/scpgate"
	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/scpbridge"
)

// TestEncodeEventMatchesJSON: EncodeEvent writes exactly what
// encoding/json writes, for transactions of every type and code, presence
// events, and strings and times its fast path leaves to encoding/json.
func TestEncodeEventMatchesJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	odd := []string{"", "driver-a1b2c3", "d<1>&", `quo"te`, "back\\slash", "tab\there", "é", "\u2028", "\xff"}
	paris := time.FixedZone("CET", 3600)
	times := []time.Time{
		time.UnixMilli(1773480000123).UTC(), time.Unix(0, 0).UTC(), {},
		time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC), time.Date(2026, 3, 1, 12, 0, 0, 0, paris),
	}
	check := func(what string, ev *scpgate.Event) {
		t.Helper()
		got, gerr := driver.EncodeEvent(ev)
		want, werr := json.Marshal(ev)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("%s: error %v, encoding/json's %v", what, gerr, werr)
		}
		if gerr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s:\ngot  %s\nwant %s", what, got, want)
		}
	}
	for i := range 20000 {
		tx := &scpbridge.Transaction{
			Seq: rng.Uint32(), TimeMS: rng.Int64N(4e12), SourceType: scpbridge.SourceType(rng.IntN(8)),
			SourceNum: uint16(rng.Uint32()), Type: scpbridge.TranType(rng.IntN(9)), Code: uint8(rng.IntN(256)),
			Card: rng.Uint64(), Facility: rng.Uint32(), Lost: rng.Uint32(),
		}
		drv := odd[rng.IntN(len(odd))]
		ev := driver.TransactionEvent(fmt.Sprintf("PANEL-%d", i), rng.Uint32(), tx, times[rng.IntN(len(times))], drv)
		if rng.IntN(10) == 0 {
			ev.Time = times[rng.IntN(len(times))]
		}
		check(fmt.Sprintf("transaction %d", i), &ev)
	}
	p := scpgate.Presence{Session: "00ff", Remote: "10.0.0.1:4000", Model: "SCP<2000>", Reason: "taken_over"}
	pe := driver.PresenceEvent("PANEL-1", 7, p, driver.PresenceOffline, time.Now(), "drv")
	check("presence", &pe)
	far := driver.TransactionEvent("PANEL-1", 1, &scpbridge.Transaction{Seq: 1, Type: scpbridge.TranDoor},
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "drv")
	check("year 10000", &far)
}
