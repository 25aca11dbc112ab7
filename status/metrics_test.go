package status

import (
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// scrape serves /metrics for snap and parses the answer with the Prometheus text parser.
func scrape(t *testing.T, snap Snapshot) map[string]*dto.MetricFamily {
	t.Helper()
	s := newTestServer(t, Config{}, &fake{snap: snap})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "text/plain; version=0.0.4; charset=utf-8", rec.Header().Get("Content-Type"))
	return parseMetrics(t, rec.Body.String())
}

func TestMetricsMethods(t *testing.T) {
	s := newTestServer(t, Config{}, &fake{snap: goodSnapshot()})
	for method, want := range map[string]int{http.MethodGet: 200, http.MethodHead: 200, http.MethodPost: 405, http.MethodPut: 405} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(method, "/metrics", nil))
		require.Equal(t, want, rec.Code, method)
	}
}

// TestMetricsLabelEscaping: label values with a double quote, a backslash and a line feed
// come back unchanged through the Prometheus parser; invalid UTF-8 becomes U+FFFD.
func TestMetricsLabelEscaping(t *testing.T) {
	name := "kiln \"A\"\\east\nline 2"
	snap := goodSnapshot()
	snap.Version = `v1 "rc" \ 2`
	snap.Sources = []Source{
		{Name: name, State: StateUp, Quality: map[string]uint64{"good": 7}, Polls: 9},
		{Name: "bad\xffutf8", State: StateDown},
	}
	snap.Streams = []Stream{{Name: name, Sealed: 4}}
	snap.Emissions = []Emission{{Source: name, Window: "hour\n", Tonnes: 2.5}}
	snap.Certificates = []Certificate{{Name: name, NotAfter: t0.Add(-time.Minute)}}
	fams := scrape(t, snap)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mrv_readings_total", map[string]string{"source": name, "quality": "good"}, 7},
		{"mrv_source_polls_total", map[string]string{"source": name}, 9},
		{"mrv_source_up", map[string]string{"source": name}, 1},
		{"mrv_source_up", map[string]string{"source": "bad\uFFFDutf8"}, 0},
		{"mrv_blocks_sealed_total", map[string]string{"stream": name}, 4},
		{"mrv_emissions_tonnes", map[string]string{"source": name, "window": "hour\n"}, 2.5},
		{"mrv_cert_expiry_seconds", map[string]string{"cert": name}, -60},
		{"mrv_agent_info", map[string]string{"version": `v1 "rc" \ 2`}, 1},
	} {
		require.InDelta(t, tc.want, value(t, fams, tc.name, tc.labels), 1e-9, "%s%q", tc.name, tc.labels)
	}
	// value matches label subsets: make sure the escaped source is one series, not a prefix.
	require.Len(t, fams["mrv_source_up"].GetMetric(), 2)
}

func TestMetricsSpecialValues(t *testing.T) {
	snap := goodSnapshot()
	snap.Emissions = []Emission{
		{Source: "a", Window: "hour", Tonnes: math.Inf(+1)},
		{Source: "b", Window: "hour", Tonnes: math.Inf(-1)},
		{Source: "c", Window: "hour", Tonnes: math.NaN()},
		{Source: "d", Window: "hour", Tonnes: 1.5e-7},
		{Source: "e", Window: "hour", Tonnes: 123456789012},
	}
	fams := scrape(t, snap)
	get := func(src string) float64 {
		return value(t, fams, "mrv_emissions_tonnes", map[string]string{"source": src})
	}
	require.True(t, math.IsInf(get("a"), +1))
	require.True(t, math.IsInf(get("b"), -1))
	require.True(t, math.IsNaN(get("c")))
	require.Equal(t, 1.5e-7, get("d"), "exact round trip")
	require.Equal(t, 123456789012.0, get("e"))
	for v, want := range map[float64]string{math.Inf(1): "+Inf", math.Inf(-1): "-Inf", 0: "0", 1: "1", -1: "-1", 0.25: "0.25", 1e21: "1e+21", 2.592e6: "2.592e+06"} {
		require.Equal(t, want, formatFloat(v))
	}
	require.Equal(t, "NaN", formatFloat(math.NaN()))
}

// TestMetricsHistogram: the buckets are cumulative, le="+Inf" equals the count, and the sum
// is the sum of the observations.
func TestMetricsHistogram(t *testing.T) {
	h := NewHistogram([]float64{0.01, 0.1, 1})
	for _, d := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 500 * time.Millisecond, 700 * time.Millisecond, 2 * time.Second, time.Minute} {
		h.Observe(d)
	}
	snap := goodSnapshot()
	snap.PublishLatency = h.Snapshot()
	fams := scrape(t, snap)
	f := fams["mrv_publish_latency_seconds"]
	require.Equal(t, dto.MetricType_HISTOGRAM, f.GetType())
	require.Len(t, f.GetMetric(), 1)
	hist := f.GetMetric()[0].GetHistogram()
	got := map[float64]uint64{}
	var bounds []float64
	for _, b := range hist.GetBucket() {
		got[b.GetUpperBound()] = b.GetCumulativeCount()
		bounds = append(bounds, b.GetUpperBound())
	}
	require.Equal(t, []float64{0.01, 0.1, 1, math.Inf(1)}, bounds)
	require.Equal(t, map[float64]uint64{0.01: 2, 0.1: 3, 1: 5, math.Inf(1): 7}, got)
	require.Equal(t, uint64(7), hist.GetSampleCount())
	require.InDelta(t, 63.265, hist.GetSampleSum(), 1e-9)

	// An empty histogram still has its +Inf bucket, sum and count.
	snap.PublishLatency = NewHistogram(LatencyBounds).Snapshot()
	hist = scrape(t, snap)["mrv_publish_latency_seconds"].GetMetric()[0].GetHistogram()
	require.Len(t, hist.GetBucket(), len(LatencyBounds)+1)
	require.Zero(t, hist.GetSampleCount())
}

func TestExpositionHistogramWithLabels(t *testing.T) {
	d := &desc{"x_seconds", "Help with a \\ backslash\nand a line feed.", typeHistogram, []string{"path"}}
	var e exposition
	e.histogram(d, HistogramSnapshot{Bounds: []float64{1, math.Inf(1)}, Counts: []uint64{1, 3}, Count: 3, Sum: 4.5}, `/a"b`)
	e.histogram(d, HistogramSnapshot{Bounds: []float64{1}, Counts: []uint64{0}, Count: 1, Sum: 2}, `/a"b`)
	require.Equal(t, `# HELP x_seconds Help with a \\ backslash\nand a line feed.
# TYPE x_seconds histogram
x_seconds_bucket{path="/a\"b",le="1"} 1
x_seconds_bucket{path="/a\"b",le="+Inf"} 3
x_seconds_sum{path="/a\"b"} 4.5
x_seconds_count{path="/a\"b"} 3
`, e.b.String(), "one +Inf bucket; the duplicate label set is left out")
	require.Equal(t, 1, e.skipped)
	f := parseMetrics(t, e.b.String())["x_seconds"]
	require.Equal(t, "Help with a \\ backslash\nand a line feed.", f.GetHelp())
	require.Equal(t, `/a"b`, f.GetMetric()[0].GetLabel()[0].GetValue())
}

// TestMetricsDuplicateSeriesKeepTheFirst: label sets written twice would make Prometheus
// reject the scrape; the first is kept and the scrape goes on.
func TestMetricsDuplicateSeriesKeepTheFirst(t *testing.T) {
	snap := goodSnapshot()
	snap.Sources = append(snap.Sources, Source{Name: "kiln1", State: StateDown, Quality: map[string]uint64{"good": 1}})
	snap.Streams = append(snap.Streams, Stream{Name: "kiln1", Sealed: 99})
	snap.Emissions = append(snap.Emissions, Emission{Source: "kiln-stack", Window: "hour", Tonnes: 9})
	snap.Certificates = append(snap.Certificates, Certificate{Name: "opcua-client", NotAfter: t0})
	fams := scrape(t, snap)
	require.Len(t, fams["mrv_source_up"].GetMetric(), 1)
	require.InDelta(t, 1, value(t, fams, "mrv_source_up", nil), 0)
	require.InDelta(t, 25, value(t, fams, "mrv_readings_total", map[string]string{"quality": "good"}), 0)
	require.InDelta(t, 5, value(t, fams, "mrv_blocks_sealed_total", map[string]string{"stream": "kiln1"}), 0)
	require.InDelta(t, 1.5, value(t, fams, "mrv_emissions_tonnes", nil), 0)
	require.InDelta(t, 30*24*3600, value(t, fams, "mrv_cert_expiry_seconds", nil), 0)
}

func TestMetricsQualitiesAlwaysPresent(t *testing.T) {
	snap := goodSnapshot()
	snap.Sources = []Source{{Name: "s", Quality: map[string]uint64{"weird": 2, "aaa": 1}}}
	var names []string
	for _, m := range scrape(t, snap)["mrv_readings_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "quality" {
				names = append(names, l.GetValue()+"="+formatFloat(m.GetCounter().GetValue()))
			}
		}
	}
	require.Equal(t, []string{"good=0", "uncertain=0", "bad=0", "aaa=1", "weird=2"}, names)
}

// TestRuntimeMetrics: the Go and process metrics are there and plausible.
func TestRuntimeMetrics(t *testing.T) {
	fams := scrape(t, goodSnapshot())
	require.GreaterOrEqual(t, value(t, fams, "go_goroutines", nil), 2.0)
	heap := value(t, fams, "go_memstats_heap_alloc_bytes", nil)
	require.Positive(t, heap)
	require.Greater(t, value(t, fams, "go_memstats_sys_bytes", nil), heap)
	require.InDelta(t, 1, value(t, fams, "go_info", map[string]string{"version": runtime.Version()}), 0)
	require.Equal(t, dto.MetricType_GAUGE, fams["go_goroutines"].GetType())
	if runtime.GOOS != "linux" {
		t.Skip("process metrics come from /proc")
	}
	require.Equal(t, dto.MetricType_COUNTER, fams["process_cpu_seconds_total"].GetType())
	require.GreaterOrEqual(t, value(t, fams, "process_cpu_seconds_total", nil), 0.0)
	rss := value(t, fams, "process_resident_memory_bytes", nil)
	require.Greater(t, rss, 1e6)
	require.Greater(t, value(t, fams, "process_virtual_memory_bytes", nil), rss)
	start := value(t, fams, "process_start_time_seconds", nil)
	now := float64(time.Now().UnixNano()) / 1e9
	require.Less(t, start, now+2, "the process started before now")
	require.Greater(t, start, now-24*3600, "a test process is not a day old")
	fds := value(t, fams, "process_open_fds", nil)
	require.GreaterOrEqual(t, fds, 3.0)
	require.GreaterOrEqual(t, value(t, fams, "process_max_fds", nil), fds)
}

// TestProcessMetricsFromProc reads a fake /proc, with a command name that holds spaces and
// parentheses; what is missing or unreadable is left out.
func TestProcessMetricsFromProc(t *testing.T) {
	proc := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(proc, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	}
	write("self/stat", "4242 (mrv (agent) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 125 0 0 20 0 12 0 360000 52428800 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n")
	write("stat", "cpu  1 2 3 4\nbtime 1700000000\nprocesses 9\n")
	write("self/limits", "Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            4096                 524288               files\n")
	write("self/fd/0", "")
	write("self/fd/1", "")

	var e exposition
	writeProcessMetrics(&e, proc)
	fams := parseMetrics(t, e.b.String())
	require.InDelta(t, 3.75, value(t, fams, "process_cpu_seconds_total", nil), 1e-9)
	require.InDelta(t, 52428800, value(t, fams, "process_virtual_memory_bytes", nil), 0)
	require.InDelta(t, 3000*os.Getpagesize(), value(t, fams, "process_resident_memory_bytes", nil), 0)
	require.InDelta(t, 1700003600, value(t, fams, "process_start_time_seconds", nil), 1e-6)
	require.InDelta(t, 2, value(t, fams, "process_open_fds", nil), 0)
	require.InDelta(t, 4096, value(t, fams, "process_max_fds", nil), 0)

	// Unlimited open files and a /proc/stat without btime: those two are left out.
	write("self/limits", "Max open files            unlimited            unlimited            files\n")
	write("stat", "cpu  1 2 3 4\n")
	e = exposition{}
	writeProcessMetrics(&e, proc)
	fams = parseMetrics(t, e.b.String())
	require.NotContains(t, fams, "process_max_fds")
	require.NotContains(t, fams, "process_start_time_seconds")
	require.Contains(t, fams, "process_resident_memory_bytes")

	// A truncated stat line and no /proc at all: nothing, and no failure.
	write("self/stat", "4242 (mrv) S 1 2 3\n")
	e = exposition{}
	writeProcessMetrics(&e, proc)
	require.NotContains(t, e.b.String(), "process_cpu")
	e = exposition{}
	writeProcessMetrics(&e, filepath.Join(proc, "nope"))
	require.Empty(t, e.b.String())
}
