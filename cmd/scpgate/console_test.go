package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/scpgate/scpgate/internal/natstest"
)

// chromiumPath returns the Chromium to drive. The test skips without one,
// unless SCPGATE_TEST_REQUIRE_CHROMIUM=1 (CI), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SCPGATE_TEST_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium on PATH and SCPGATE_TEST_REQUIRE_CHROMIUM=1 (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install chromium); set SCPGATE_TEST_REQUIRE_CHROMIUM=1 to fail instead")
	return ""
}

// TestConsoleInBrowser runs `scpgate dev --sim 5` with API tokens and
// drives the web console in a headless Chromium as an operator would:
// the page asks for the token, the fleet view lists the controllers, a
// search by serial finds one, a momentary unlock sent from its page ends
// "ok" on the page, and the command API agrees; a command the application
// sends shows among the recent commands. The token never reaches the logs. With SCPGATE_TEST_SCREENSHOTS=DIR the pages are saved there.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole system and a browser")
	}
	browser := chromiumPath(t)
	bin := filepath.Join(t.TempDir(), "scpgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const token = "console-test-token-0123456789"
	web := freeAddr(t)
	cmd := exec.Command(bin, "dev", "--data", t.TempDir(), "--sim", "5", "--sim-rate", "5", "--listen", freeAddr(t),
		"--http", web, "--nats-port", "-1", "--status-every", "0")
	cmd.Env = append(os.Environ(), "SCPGATE_API_TOKENS="+token+":events:read,commands:read,commands:write")
	var out natstest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var browserOut natstest.Buffer
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if strings.Contains(out.String(), token) {
			t.Error("the API token appears in the log of scpgate dev")
		}
		if t.Failed() {
			t.Logf("scpgate dev output:\n%s", out.String())
			var lines []string
			for _, l := range strings.Split(browserOut.String(), "\n") {
				if !strings.Contains(l, "dbus") { // no system bus in a container: noise
					lines = append(lines, l)
				}
			}
			t.Logf("chromium output:\n%s", strings.Join(lines, "\n"))
		}
	}()
	base := "http://" + web
	eventually(t, "fleet online", 60*time.Second, func() error {
		var list struct {
			Controllers []struct{} `json:"controllers"`
		}
		if err := getJSONAuth(base+"/v1/controllers", token, &list); err != nil {
			return err
		}
		if len(list.Controllers) != 5 {
			return fmt.Errorf("%d of 5 controllers online", len(list.Controllers))
		}
		return nil
	})

	shots := os.Getenv("SCPGATE_TEST_SCREENSHOTS")
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(browser),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(&browserOut),
	)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelTab()
	// The first run starts the browser, which lives as long as the
	// context of that run: no timeout on it; each step has its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](
				`"search: " + (document.querySelector("#search")?.value ?? "-") + "\n" + document.body.innerText`))
			t.Fatalf("%s: %v\npage:\n%s", what, err, page)
		}
	}
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The fleet view needs a token: the page asks for it.
	step("open the console and give the token",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("token-input")),
		chromedp.SendKeys(chromedp.ID("token-input"), token+"\r"), // Enter uses it
	)
	step("fleet view lists the controllers", waitJS(`document.querySelectorAll("#controllers a[data-serial]").length === 5`))
	shot("fleet")

	const serial = "SIM000003"
	step("search by serial",
		chromedp.Click(chromedp.ID("search")),
		chromedp.KeyEvent(serial),
		waitJS(`(() => { const l = document.querySelectorAll("#controllers a[data-serial]");
			return l.length === 1 && l[0].dataset.serial === "`+serial+`"; })()`),
		chromedp.Click(chromedp.CSS(`#controllers a[data-serial="`+serial+`"]`)),
		chromedp.WaitVisible(chromedp.ID("cmd-send")),
	)
	step("controller page shows presence, state and events",
		waitJS(`!!document.querySelector("#presence")?.textContent.includes("dev")`),
		waitJS(`document.querySelectorAll("#events td.mono").length > 0`),
	)
	step("send a momentary unlock",
		chromedp.SetValue(chromedp.ID("cmd-type"), "momentary_unlock"),
		chromedp.SetValue(chromedp.ID("cmd-params"), `{"door": 1, "seconds": 3}`),
		chromedp.Click(chromedp.ID("cmd-send")),
	)
	step("its result shows ok", waitJS(`!!document.querySelector('#cmd-status [data-status="ok"]')`),
		waitJS(`!!document.querySelector('#recent [data-status="ok"]')`))
	id, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#cmd-result code")))
	if err != nil {
		t.Fatalf("command id on the page: %v", err)
	}
	// A command from another sender (the application) shows among the
	// recent ones too.
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/controllers/"+serial+"/commands?wait=10s", strings.NewReader(`{"type":"id_request"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	var sub struct{}
	if err := doJSON(req, &sub); err != nil {
		t.Fatalf("id_request through the API: %v", err)
	}
	step("another sender's command among the recent ones",
		waitJS(`[...document.querySelectorAll("#recent tr")].some((r) => r.textContent.includes("id_request") && r.querySelector('[data-status="ok"]'))`))
	shot("controller")

	var rec struct {
		Controller string `json:"controller"`
		Type       string `json:"type"`
		Status     string `json:"status"`
	}
	if err := getJSONAuth(base+"/v1/commands/"+id, token, &rec); err != nil {
		t.Fatalf("command %q shown on the page: %v", id, err)
	}
	if rec.Controller != serial || rec.Type != "momentary_unlock" || rec.Status != "ok" {
		t.Errorf("command %s: %+v, want a momentary_unlock of %s, ok", id, rec, serial)
	}
}

// waitJS polls expr in the page until it is true (or the context ends).
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if ok, err := chromedp.Evaluate[bool](expr)(ctx, t); err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// getJSONAuth is getJSON with a bearer token.
func getJSONAuth(url, token string, v any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return doJSON(req, v)
}

// doJSON sends req and decodes a 200 answer into v.
func doJSON(req *http.Request, v any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, b.String())
	}
	return json.Unmarshal(b.Bytes(), v)
}
