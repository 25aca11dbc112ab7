//go:build integration

package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
)

// chromium finds Debian's Chromium. Without it the test is skipped, except under CI=true,
// where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium)")
	return ""
}

// artifactDir is where tests leave files for people to look at: $MRV_ARTIFACTS, or
// mrv-agent-artifacts under the temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MRV_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mrv-agent-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// TestIntegrationStatusPageInBrowser loads a running agent's status page in headless
// Chromium over the DevTools protocol, on a phone-sized viewport: the sources, the backlog,
// the emissions figure and the three charts are there, the page fits the screen, nothing
// is logged to the console, and a screenshot is saved as a test artifact.
func TestIntegrationStatusPageInBrowser(t *testing.T) {
	exe := chromium(t)
	bed := agenttest.New(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "browser-test", StatusListen: "127.0.0.1:0"})
	require.NoError(t, err)
	runCtx, stopAgent := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(runCtx) }()
	defer func() {
		stopAgent()
		require.NoError(t, <-runDone)
	}()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	// The first Run starts the browser; it must not run under a timeout (chromedp.Run).
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)))

	var mu sync.Mutex
	var console []string
	consoleCtx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(consoleCtx) // subscribed now: nothing is missed
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				console = append(console, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	defer func() {
		stopConsole()
		<-consoleDone
	}()

	tctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()
	url := a.StatusURL()
	// Wait for the chart sampler's second sample, so the readings chart has points.
	deadline := time.Now().Add(30 * time.Second)
	for {
		require.NoError(t, chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("#charts"))))
		dots, err := chromedp.Run(tctx, chromedp.Nodes(chromedp.CSSAll("#chart-readings circle"), chromedp.AtLeast(0)))
		require.NoError(t, err)
		if len(dots) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the readings chart got no points")
		<-time.After(time.Second)
	}

	title, err := chromedp.Run(tctx, chromedp.Title())
	require.NoError(t, err)
	require.Contains(t, title, "mrv-agent test-plant/gw1")
	sources, err := chromedp.Run(tctx, chromedp.Nodes(chromedp.CSSAll("#sources tr.source")))
	require.NoError(t, err)
	require.Len(t, sources, 1, "one source row")
	// On a loaded machine one poll of the 80 ms timeout can fail and show the source down for
	// a moment: reload until it is up again.
	var state string
	for deadline := time.Now().Add(30 * time.Second); ; {
		state, err = chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#sources tr[data-source="kiln1"] .badge`)))
		require.NoError(t, err)
		if strings.TrimSpace(state) == "up" || time.Now().After(deadline) {
			break
		}
		<-time.After(500 * time.Millisecond)
		require.NoError(t, chromedp.Do(tctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("#charts"))))
	}
	require.Equal(t, "up", strings.TrimSpace(state))
	backlog, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#backlog-total")))
	require.NoError(t, err)
	require.NotEmpty(t, strings.TrimSpace(backlog), "the backlog figure")
	emissions, err := chromedp.Run(tctx, chromedp.Nodes(chromedp.CSSAll("#emissions .figure")))
	require.NoError(t, err)
	require.NotEmpty(t, emissions, "the emissions figure slot")
	charts, err := chromedp.Run(tctx, chromedp.Nodes(chromedp.CSSAll("#charts figure svg.chart")))
	require.NoError(t, err)
	require.Len(t, charts, 3, "readings, backlog and emissions charts")
	require.NoError(t, chromedp.Do(tctx,
		chromedp.WaitVisible(chromedp.CSS("#chart-backlog")),
		chromedp.WaitVisible(chromedp.CSS("#chart-emissions")),
	))
	scrollWidth, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	require.NoError(t, err)
	clientWidth, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`))
	require.NoError(t, err)
	require.LessOrEqual(t, scrollWidth, clientWidth, "the page fits a small screen without scrolling sideways")
	overflow, err := chromedp.Run(tctx, chromedp.Evaluate[int](
		`Array.from(document.querySelectorAll("section")).filter(e => e.scrollWidth > e.clientWidth).length`))
	require.NoError(t, err)
	require.Zero(t, overflow, "no section needs scrolling on a phone")

	shot, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(artifactDir(t), "status-page.png")
	require.NoError(t, os.WriteFile(path, shot, 0o644))
	t.Logf("screenshot: %s", path)
	fmt.Fprintf(os.Stderr, "status page screenshot: %s\n", path)

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, console, "console errors and warnings")
}
