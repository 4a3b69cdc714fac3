//go:build !driveronly

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/scpgate/scpgate/driver"
	"github.com/scpgate/scpgate/internal/natsconn"
)

func init() {
	register(&command{
		name:    "drain",
		summary: "make a running driver release some of its controllers, to rebalance the drivers",
		usage: `scpgate drain --driver ID (--sessions N | --fraction F) [--json]

Asks the driver ID (its SCPGATE_DRIVER_ID; 'scpgate status' lists them)
over NATS to release N of its sessions, or the fraction F (0 to 1) of
them, without stopping: after a rolling restart the last driver started
holds few controllers and the others many. Each released session is
closed like in a drain (its events stored and acknowledged first, then a
bye with a random reconnect delay) at the driver's SCPGATE_DRAIN_RATE,
counted with close reason "shed"; the controllers reconnect through the
load balancer. Prints what the driver answered: the sessions it held and
how many it releases. Connects with NATS_URL and the other NATS_
variables (an "ops" user is enough).`,
		run: runDrainCmd,
	})
}

func runDrainCmd(ctx context.Context, args []string) error {
	var natsCfg natsconn.Config
	fs := newFlagSet("drain", envSpec{"", &natsCfg})
	id := fs.String("driver", "", "id of the driver (required)")
	sessions := fs.Int("sessions", 0, "number of sessions to release")
	fraction := fs.Float64("fraction", 0, "fraction of the sessions to release, 0 to 1")
	asJSON := fs.Bool("json", false, "print the driver's answer as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the driver's answer")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	case *id == "":
		return usageErrorf("--driver is required")
	case (*sessions > 0) == (*fraction > 0):
		return usageErrorf("give one of --sessions N (at least 1) or --fraction F (0 to 1)")
	case *sessions < 0:
		return usageErrorf("--sessions must be at least 1")
	case *fraction < 0 || *fraction > 1:
		return usageErrorf("--fraction must be within 0..1")
	}
	if err := loadEnv("", &natsCfg); err != nil {
		return err
	}
	nc, err := natsconn.Connect(natsCfg, "scpgate-drain", newLogger("warn", false))
	if err != nil {
		return err
	}
	defer nc.Close()
	body, _ := json.Marshal(driver.ShedRequest{Sessions: *sessions, Fraction: *fraction})
	rctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	m, err := nc.RequestWithContext(rctx, driver.ShedSubject(*id), body)
	if err != nil {
		return fmt.Errorf("ask driver %s: %w (is it running? 'scpgate status' lists the drivers)", *id, err)
	}
	if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
		return fmt.Errorf("driver %s refused: %s", *id, m.Header.Get("Nats-Service-Error"))
	}
	var resp driver.ShedResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return fmt.Errorf("decode answer of driver %s: %w", *id, err)
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(resp)
	}
	fmt.Printf("driver %s: releasing %d of %d sessions\n", resp.ID, resp.Shed, resp.Sessions)
	return nil
}
