package agent

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/status"
)

// httpGet returns the status code and body of url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// sumSeries adds up the values of family name whose labels include want.
func sumSeries(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
next:
	for _, m := range fams[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// TestStatusServerEndToEnd runs the agent with its status server on an ephemeral port:
// the endpoints answer while it runs, and after the run /metrics parses with the
// Prometheus text parser and its counters equal what the verifier counted.
func TestStatusServerEndToEnd(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "test", StatusListen: "127.0.0.1:0"})
	require.NoError(t, err)
	base := "http://" + a.StatusAddr()
	require.Equal(t, base+"/", a.StatusURL())
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()

	require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { c, _ := httpGet(t, base+"/readyz"); return c == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	code, body := httpGet(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, body)
	code, body = httpGet(t, base+"/status")
	require.Equal(t, http.StatusOK, code)
	var r status.Report
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	require.True(t, r.Ready, r.Problems)
	require.Len(t, r.Sources, 1)
	require.Equal(t, "kiln1", r.Sources[0].Name)
	require.Equal(t, status.StateUp, r.Sources[0].State)
	require.Positive(t, r.Sources[0].Quality["good"])
	require.Len(t, r.Streams, 2)
	require.Equal(t, AgentStream, r.Streams[0].Name)
	require.Len(t, r.Streams[1].LogID, 32)
	require.Positive(t, r.Streams[1].NextSeq)
	require.True(t, r.Uplink.Connected)
	require.True(t, r.Buffer.Open)
	require.Positive(t, r.Buffer.FileBytes)
	require.Len(t, r.KeyID, 64)
	require.Equal(t, "test", r.Version)
	require.NotNil(t, r.Emissions, "the emissions slot is present")
	code, body = httpGet(t, base+"/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `data-source="kiln1"`)

	cancel()
	require.NoError(t, <-runDone)
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("the server should have stopped with the agent")
	}
	final := a.Stats()
	require.Eventually(t, func() bool { return v.Summary().Blocks >= final.Blocks }, 10*time.Second, 20*time.Millisecond)
	s := v.Stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)

	// The agent's final counters, through the same exposition a scrape gets.
	srv, err := status.New(status.Config{Listen: "127.0.0.1:0", StallAfter: time.Hour}, a)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	require.NoError(t, err)

	perOrigin := map[string]map[string]float64{} // stream -> quality -> readings
	for _, rec := range v.Records() {
		rd, ok := rec.Record.Reading()
		if !ok {
			continue
		}
		stream := rec.Origin[strings.LastIndex(rec.Origin, "/")+1:]
		if perOrigin[stream] == nil {
			perOrigin[stream] = map[string]float64{}
		}
		perOrigin[stream][rd.Quality.Severity.String()]++
	}
	require.Equal(t, float64(s.Readings), sumSeries(fams, "mrv_readings_total", nil))
	for _, q := range []string{"good", "uncertain", "bad"} {
		require.Equal(t, perOrigin["kiln1"][q], sumSeries(fams, "mrv_readings_total", map[string]string{"source": "kiln1", "quality": q}), q)
	}
	require.Equal(t, float64(s.Blocks), sumSeries(fams, "mrv_blocks_sealed_total", nil), "blocks sealed = blocks verified")
	require.Equal(t, float64(final.Blocks), sumSeries(fams, "mrv_blocks_sealed_total", nil))
	require.Equal(t, float64(final.Published), sumSeries(fams, "mrv_uplink_published_blocks_total", nil))
	lat := fams["mrv_publish_latency_seconds"].GetMetric()[0].GetHistogram()
	require.Positive(t, lat.GetSampleCount(), "publish latencies observed")
	require.LessOrEqual(t, lat.GetSampleCount(), final.Published)
	require.Contains(t, fams, "mrv_source_up")
	require.Contains(t, fams, "mrv_clock_synchronised")
	require.Contains(t, fams, "mrv_buffer_bytes")
	require.Contains(t, fams, "mrv_uplink_connected")
	require.Contains(t, fams, "mrv_oldest_unpublished_seconds")
	require.Contains(t, fams, "mrv_unpublished_blocks")
}

// TestStatusRefusesPublicListenWithoutAuth: a non-loopback status.listen needs basic auth.
func TestStatusRefusesPublicListenWithoutAuth(t *testing.T) {
	bed := agenttest.New(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	_, err = New(cfg, Options{StatusListen: "0.0.0.0:0"})
	require.ErrorContains(t, err, "not a loopback address")

	// With credentials it starts.
	pw := filepath.Join(bed.Dir, "status.pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	cfg.Status.Username, cfg.Status.PasswordFile = "ops", pw
	a, err := New(cfg, Options{StatusListen: "127.0.0.1:0"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	code, _ := httpGet(t, "http://"+a.StatusAddr()+"/status")
	require.Equal(t, http.StatusUnauthorized, code)
	req, err := http.NewRequest(http.MethodGet, "http://"+a.StatusAddr()+"/healthz", nil)
	require.NoError(t, err)
	req.SetBasicAuth("ops", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	require.NoError(t, <-runDone)
}

// notifySocket listens on a unixgram socket as systemd does and returns its messages.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: socket paths are limited to 108 bytes
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	msgs := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	t.Setenv("NOTIFY_SOCKET", path)
	return msgs
}

// next waits for the next message that satisfies ok, failing after d.
func next(t *testing.T, msgs <-chan string, d time.Duration, ok func(string) bool, what string) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-msgs:
			if ok(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s within %s", what, d)
		}
	}
}

func is(s string) func(string) bool { return func(m string) bool { return strings.Contains(m, s) } }

// TestNotifyAndWatchdog drives the notify protocol over a socket the test creates: READY=1
// after the first commit, WATCHDOG=1 while the pipeline commits, no more pings (and a
// failing /healthz) once it stalls, pings again after it recovers, STOPPING=1 at the end.
func TestNotifyAndWatchdog(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "200000") // pet every 100 ms
	t.Setenv("WATCHDOG_PID", "")
	bed := agenttest.New(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	a, err := New(cfg, Options{StatusListen: "127.0.0.1:0", StallAfter: time.Second})
	require.NoError(t, err)
	var stall atomic.Bool
	release := make(chan struct{})
	a.obs.afterCommit = func() {
		if stall.Load() {
			<-release // the pipeline goroutine hangs, as on a stuck disk
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()

	first := next(t, msgs, 10*time.Second, func(string) bool { return true }, "first message")
	require.Contains(t, first, "READY=1", "readiness comes first, after the first commit")
	require.Positive(t, a.Stats().Blocks, "READY=1 only after a commit")
	for range 3 {
		next(t, msgs, 5*time.Second, is("WATCHDOG=1"), "watchdog ping")
	}
	code, body := httpGet(t, "http://"+a.StatusAddr()+"/healthz")
	require.Equal(t, http.StatusOK, code, body)

	stall.Store(true)
	next(t, msgs, 10*time.Second, is("STATUS=pipeline stalled"), "stall status")
	quiet := time.After(time.Second) // ten watchdog periods
wait:
	for {
		select {
		case m := <-msgs:
			require.NotContains(t, m, "WATCHDOG=1", "no ping while the pipeline is stalled")
		case <-quiet:
			break wait
		}
	}
	code, body = httpGet(t, "http://"+a.StatusAddr()+"/healthz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "pipeline stalled")

	stall.Store(false)
	close(release)
	next(t, msgs, 10*time.Second, is("WATCHDOG=1"), "ping after recovery")
	cancel()
	require.NoError(t, <-runDone)
	runDone <- nil
	next(t, msgs, 5*time.Second, is("STOPPING=1"), "stopping")
}

// TestCountReadingByQuality checks the per-quality counters the metrics come from.
func TestCountReadingByQuality(t *testing.T) {
	cfg := &config.Config{Sources: []config.Source{{Name: "s"}}}
	cfg.Blocks.MaxAge = config.Duration(time.Second)
	o := newObserver(cfg, Options{})
	require.Equal(t, 13*time.Second, o.stallAfter)
	for _, q := range []reading.Severity{reading.Good, reading.Good, reading.Bad, reading.Uncertain, 7} {
		o.countReading("s", reading.Reading{Tag: "t", Quality: reading.Quality{Severity: q}}.Record())
	}
	o.countReading("unknown", reading.Reading{Tag: "t"}.Record())
	o.countReading("s", reading.Record{Kind: reading.KindHeartbeat, Body: &reading.HeartbeatBody{}})
	var got [4]uint64
	for i := range got {
		got[i] = o.quality["s"][i].Load()
	}
	require.Equal(t, [4]uint64{2, 1, 1, 1}, got)
}
