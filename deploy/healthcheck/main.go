// Command healthcheck is the container health probe of the scpgate image.
// The image has no shell and no HTTP client, so docker-compose.yml runs
// this instead:
//
//	healthcheck [-timeout 2s] URL
//
// An http:// or https:// URL is healthy when a GET answers 2xx (a driver's
// /readyz, ingest's /healthz); a tcp://host:port URL is healthy when a TCP
// connection opens (the commander's API port). It exits 0 when healthy, 1
// when not (the reason on stderr) and 2 on a bad command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Exit codes.
const (
	exitHealthy   = 0
	exitUnhealthy = 1
	exitUsage     = 2
)

// ErrUnsupportedScheme is returned by check for a URL that is neither
// http(s):// nor tcp://.
var ErrUnsupportedScheme = errors.New("unsupported URL scheme (want http, https or tcp)")

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run probes the URL of args and returns the exit code.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: healthcheck [-timeout D] http://HOST:PORT/PATH | tcp://HOST:PORT")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := check(ctx, fs.Arg(0)); err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		if errors.Is(err, ErrUnsupportedScheme) {
			return exitUsage
		}
		return exitUnhealthy
	}
	return exitHealthy
}

// check probes target until ctx ends.
func check(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("parse %q: %w", target, err)
	}
	switch u.Scheme {
	case "http", "https":
		return checkHTTP(ctx, target)
	case "tcp":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return fmt.Errorf("dial %s: %w", u.Host, err)
		}
		return conn.Close()
	}
	return fmt.Errorf("%s: %w", target, ErrUnsupportedScheme)
}

// checkHTTP GETs target and wants a 2xx answer.
func checkHTTP(ctx context.Context, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", target, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("get %s: %s: %s", target, resp.Status, body)
	}
	return nil
}
