package status

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)

// fake is a Provider returning a settable snapshot.
type fake struct {
	mu   sync.Mutex
	snap Snapshot
}

func (f *fake) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fake) set(fn func(*Snapshot)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Copy on write: snapshots handed out earlier share the slices.
	f.snap.Sources = append([]Source(nil), f.snap.Sources...)
	f.snap.Streams = append([]Stream(nil), f.snap.Streams...)
	fn(&f.snap)
}

// goodSnapshot is a healthy, ready agent with one source and two streams.
func goodSnapshot() Snapshot {
	h := NewHistogram(LatencyBounds)
	h.Observe(20 * time.Millisecond)
	h.Observe(3 * time.Second)
	return Snapshot{
		Version: "test", Site: "plant", Gateway: "gw1", KeyID: strings.Repeat("ab", 32), Clock: ClockSynchronised,
		Pipeline: Pipeline{Started: t0.Add(-time.Minute), LastCommit: t0.Add(-time.Second), IdleSeconds: 1, Readings: 30, Blocks: 7},
		Sources:  []Source{{Name: "kiln1", State: StateUp, LastPoll: t0, Quality: map[string]uint64{"good": 25, "uncertain": 3, "bad": 2}}},
		Streams: []Stream{
			{Name: "agent", LogID: strings.Repeat("01", 16), NextSeq: 4, Sealed: 2},
			{Name: "kiln1", LogID: strings.Repeat("02", 16), NextSeq: 40, Sealed: 5, Unpublished: 3, OldestUnpublished: t0.Add(-10 * time.Second)},
		},
		Uplink:         Uplink{Connected: true, Published: 4},
		Buffer:         Buffer{Open: true, LiveBytes: 2048, FileBytes: 65536},
		Emissions:      []Emission{{Source: "kiln-stack", Window: "hour", Start: t0.Truncate(time.Hour), End: t0.Truncate(time.Hour).Add(time.Hour), Tonnes: 1.5, Validity: ValidityValid}},
		Certificates:   []Certificate{{Name: "opcua-client", Subject: "CN=gw1", NotAfter: t0.Add(30 * 24 * time.Hour)}},
		PublishLatency: h.Snapshot(),
	}
}

func newTestServer(t *testing.T, cfg Config, p Provider) *Server {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.StallAfter == 0 {
		cfg.StallAfter = 13 * time.Second
	}
	cfg.Now = func() time.Time { return t0 }
	s, err := New(cfg, p)
	require.NoError(t, err)
	return s
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		listen string
		auth   bool
		ok     bool
	}{
		{"127.0.0.1:9464", false, true},
		{"localhost:9464", false, true},
		{"[::1]:9464", false, true},
		{"0.0.0.0:9464", false, false},
		{":9464", false, false},
		{"192.0.2.10:9464", false, false},
		{"0.0.0.0:9464", true, true},
		{"no-port", true, false},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			err := CheckListen(tc.listen, tc.auth)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
		})
	}
	_, err := New(Config{Listen: "0.0.0.0:9464", StallAfter: time.Second}, &fake{})
	require.ErrorContains(t, err, "not a loopback address: set status.username and status.password_file")
	_, err = New(Config{Listen: "0.0.0.0:9464", Username: "ops", StallAfter: time.Second}, &fake{})
	require.ErrorContains(t, err, "together")
}

func TestHealthAndReadiness(t *testing.T) {
	for _, tc := range []struct {
		name           string
		change         func(*Snapshot)
		healthy, ready bool
		problem        string
	}{
		{"good", func(*Snapshot) {}, true, true, ""},
		{"stalled pipeline", func(s *Snapshot) { s.Pipeline.IdleSeconds = 14 }, false, false, "pipeline stalled"},
		{"not started", func(s *Snapshot) { s.Pipeline = Pipeline{} }, false, false, "not started"},
		{"no source up", func(s *Snapshot) { s.Sources[0].State = StateDown }, true, false, "no source up"},
		{"buffer closed", func(s *Snapshot) { s.Buffer.Open = false }, true, false, "buffer not open"},
		{"buffer failing", func(s *Snapshot) { s.Buffer.Failing = true }, true, false, "commits failing"},
		{"uplink down within budget", func(s *Snapshot) { s.Uplink.Connected = false }, true, true, ""},
		{"uplink down past budget", func(s *Snapshot) {
			s.Uplink.Connected = false
			s.Streams[1].OldestUnpublished = t0.Add(-6 * time.Minute)
		}, true, false, "uplink down with a backlog of 6m0s"},
		{"uplink up with an old backlog", func(s *Snapshot) { s.Streams[1].OldestUnpublished = t0.Add(-time.Hour) }, true, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := goodSnapshot()
			snap.Sources = append([]Source(nil), snap.Sources...)
			snap.Streams = append([]Stream(nil), snap.Streams...)
			tc.change(&snap)
			s := newTestServer(t, Config{}, &fake{snap: snap})
			h := s.Handler()
			code, body := get(t, h, "/healthz")
			require.Equal(t, tc.healthy, code == http.StatusOK, body)
			code, body = get(t, h, "/readyz")
			require.Equal(t, tc.ready, code == http.StatusOK, body)
			if tc.problem != "" {
				require.Contains(t, body, tc.problem)
			}
			code, body = get(t, h, "/status")
			require.Equal(t, http.StatusOK, code)
			var r Report
			require.NoError(t, json.Unmarshal([]byte(body), &r), body)
			require.Equal(t, tc.healthy, r.Healthy)
			require.Equal(t, tc.ready, r.Ready)
			require.Equal(t, tc.problem == "", len(r.Problems) == 0, r.Problems)
		})
	}
}

func TestStatusJSON(t *testing.T) {
	s := newTestServer(t, Config{}, &fake{snap: goodSnapshot()})
	_, body := get(t, s.Handler(), "/status")
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	for _, k := range []string{"sources", "streams", "uplink", "buffer", "emissions", "certificates", "clock", "key_id", "version", "healthy", "ready"} {
		require.Contains(t, doc, k)
	}
	src := doc["sources"].([]any)[0].(map[string]any)
	require.Equal(t, "up", src["state"])
	require.Equal(t, map[string]any{"good": 25.0, "uncertain": 3.0, "bad": 2.0}, src["quality_counts"])
	st := doc["streams"].([]any)[1].(map[string]any)
	require.InDelta(t, 10.0, st["oldest_unpublished_seconds"], 0.001)
	require.NotContains(t, doc["streams"].([]any)[0].(map[string]any), "oldest_unpublished", "zero times are omitted")
}

func TestBasicAuth(t *testing.T) {
	s := newTestServer(t, Config{Listen: "0.0.0.0:0", Username: "ops", Password: "s3cret"}, &fake{snap: goodSnapshot()})
	h := s.Handler()
	for _, tc := range []struct {
		name, user, pass string
		want             int
	}{
		{"none", "", "", http.StatusUnauthorized},
		{"wrong password", "ops", "guess", http.StatusUnauthorized},
		{"wrong user", "root", "s3cret", http.StatusUnauthorized},
		{"right", "ops", "s3cret", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/", "/healthz", "/readyz", "/status", "/metrics"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				if tc.user != "" {
					req.SetBasicAuth(tc.user, tc.pass)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				require.Equal(t, tc.want, rec.Code, path)
				if tc.want == http.StatusUnauthorized {
					require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Basic")
				}
			}
		})
	}
}

// parseMetrics parses the exposition the way Prometheus does.
func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	return fams
}

// value returns the value of the series of family name with the given labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "no family %s", name)
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func TestMetrics(t *testing.T) {
	s := newTestServer(t, Config{}, &fake{snap: goodSnapshot()})
	code, body := get(t, s.Handler(), "/metrics")
	require.Equal(t, http.StatusOK, code)
	fams := parseMetrics(t, body)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mrv_readings_total", map[string]string{"source": "kiln1", "quality": "good"}, 25},
		{"mrv_readings_total", map[string]string{"source": "kiln1", "quality": "uncertain"}, 3},
		{"mrv_readings_total", map[string]string{"source": "kiln1", "quality": "bad"}, 2},
		{"mrv_source_up", map[string]string{"source": "kiln1"}, 1},
		{"mrv_blocks_sealed_total", map[string]string{"stream": "kiln1"}, 5},
		{"mrv_blocks_sealed_total", map[string]string{"stream": "agent"}, 2},
		{"mrv_unpublished_blocks", map[string]string{"stream": "kiln1"}, 3},
		{"mrv_oldest_unpublished_seconds", nil, 10},
		{"mrv_buffer_bytes", nil, 2048},
		{"mrv_buffer_file_bytes", nil, 65536},
		{"mrv_uplink_connected", nil, 1},
		{"mrv_publish_latency_seconds", nil, 2},
		{"mrv_emissions_tonnes", map[string]string{"source": "kiln-stack", "window": "hour"}, 1.5},
		{"mrv_clock_synchronised", nil, 1},
		{"mrv_cert_expiry_seconds", map[string]string{"cert": "opcua-client"}, 30 * 24 * 3600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.InDelta(t, tc.want, value(t, fams, tc.name, tc.labels), 1e-9)
		})
	}
	require.Equal(t, dto.MetricType_HISTOGRAM, fams["mrv_publish_latency_seconds"].GetType())
	h := fams["mrv_publish_latency_seconds"].GetMetric()[0].GetHistogram()
	require.InDelta(t, 3.02, h.GetSampleSum(), 1e-9)
	for _, b := range h.GetBucket() {
		switch b.GetUpperBound() {
		case 0.025:
			require.Equal(t, uint64(1), b.GetCumulativeCount())
		case 5:
			require.Equal(t, uint64(2), b.GetCumulativeCount())
		}
	}
	require.Contains(t, fams, "go_goroutines", "runtime metrics too")
}

func TestMetricsDuplicateLabelsDoNotFailTheScrape(t *testing.T) {
	snap := goodSnapshot()
	snap.Emissions = append(snap.Emissions, snap.Emissions[0])
	s := newTestServer(t, Config{}, &fake{snap: snap})
	code, body := get(t, s.Handler(), "/metrics")
	require.Equal(t, http.StatusOK, code, body)
	parseMetrics(t, body)
}

func TestRunServesUntilCancelled(t *testing.T) {
	f := &fake{snap: goodSnapshot()}
	s, err := New(Config{Listen: "127.0.0.1:0", StallAfter: time.Hour, SampleEvery: 10 * time.Millisecond}, f)
	require.NoError(t, err)
	require.Nil(t, s.Addr())
	require.NoError(t, s.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))

	// The sampler folds the growing counter into the chart history.
	require.Eventually(t, func() bool { return len(s.hist.snapshot()) > 0 }, 5*time.Second, 10*time.Millisecond)
	f.set(func(s *Snapshot) { s.Sources[0].Quality = map[string]uint64{"good": 1000} })
	require.Eventually(t, func() bool {
		var n uint64
		for _, p := range s.hist.snapshot() {
			n += p.Readings["kiln1"]
		}
		return n == 970
	}, 5*time.Second, 10*time.Millisecond)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if resp, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("the listener should be closed")
	}
}
