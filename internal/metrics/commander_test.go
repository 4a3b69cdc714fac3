package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/scpgate/scpgate/internal/metrics"
	"github.com/scpgate/scpgate/internal/natstest"
)

// TestBuildCertAndCommanderMetrics checks scpgate_build_info, the
// certificate expiry gauge and the commander's submission and micro
// service metrics.
func TestBuildCertAndCommanderMetrics(t *testing.T) {
	metrics.SetVersion("v1.2.3-test")
	reg := metrics.NewRegistry()
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := metrics.RegisterCertExpiry(reg, map[string]func() time.Time{
		"controller_server": func() time.Time { return expiry },
		"nats_client":       func() time.Time { return time.Time{} }, // unreadable: left out
	}); err != nil {
		t.Fatal(err)
	}

	nc := natstest.Connect(t, natstest.RunServer(t))
	svc, err := micro.AddService(nc, micro.Config{Name: "scpgate-commander-test", Version: "1.0.0",
		Endpoint: &micro.EndpointConfig{Subject: "test.submit", Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond([]byte("ok")) })}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	if _, err := nc.Request("test.submit", nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cm, err := metrics.NewCommander(reg, svc)
	if err != nil {
		t.Fatal(err)
	}
	h := cm.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/controllers/C1/commands", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/controllers/C1/commands?wait=5s", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/commands/x", nil))

	text := scrape(t, metrics.Handler(reg))
	tests := []struct {
		series string
		want   float64
	}{
		{`scpgate_tls_cert_expiry_timestamp_seconds{cert="controller_server"}`, float64(expiry.Unix())},
		{`scpgate_commander_submit_duration_seconds_count{code="202",wait="false"}`, 1},
		{`scpgate_commander_submit_duration_seconds_count{code="202",wait="true"}`, 1},
		{`scpgate_commander_nats_requests_total{endpoint="default"}`, 1},
		{`scpgate_commander_nats_errors_total{endpoint="default"}`, 0},
	}
	for _, tt := range tests {
		if got, ok := value(text, tt.series); !ok || got != tt.want {
			t.Errorf("%s: got %v (found %v), want %v", tt.series, got, ok, tt.want)
		}
	}
	if strings.Contains(text, `cert="nats_client"`) {
		t.Errorf("a certificate without expiry is exposed:\n%s", text)
	}
	var info string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "scpgate_build_info{") {
			info = l
		}
	}
	if !strings.Contains(info, `version="v1.2.3-test"`) || !strings.Contains(info, `goversion="go`) || !strings.HasSuffix(info, " 1") {
		t.Errorf("got build info %q, want version, goversion and value 1", info)
	}
}
