package status

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptors. Every value comes from one Snapshot per scrape, so a scrape is
// consistent with itself.
var (
	descReadings = prometheus.NewDesc("mrv_readings_total",
		"Readings in committed blocks, by source and quality.", []string{"source", "quality"}, nil)
	descSourceUp = prometheus.NewDesc("mrv_source_up",
		"1 when the source's last poll succeeded.", []string{"source"}, nil)
	descPolls = prometheus.NewDesc("mrv_source_polls_total",
		"Polls attempted, retries during outages included.", []string{"source"}, nil)
	descPollFailures = prometheus.NewDesc("mrv_source_poll_failures_total",
		"Polls that failed.", []string{"source"}, nil)
	descBlocks = prometheus.NewDesc("mrv_blocks_sealed_total",
		"Blocks sealed and committed to the buffer since start, by stream.", []string{"stream"}, nil)
	descUnpublished = prometheus.NewDesc("mrv_unpublished_blocks",
		"Blocks stored and not yet acknowledged by the broker, by stream.", []string{"stream"}, nil)
	descOldest = prometheus.NewDesc("mrv_oldest_unpublished_seconds",
		"Age of the oldest unpublished block over all streams; 0 when none.", nil, nil)
	descBufferBytes = prometheus.NewDesc("mrv_buffer_bytes",
		"Bytes of stored blocks (what buffer.max_bytes caps).", nil, nil)
	descBufferFileBytes = prometheus.NewDesc("mrv_buffer_file_bytes",
		"Size of the buffer file.", nil, nil)
	descFailedCommits = prometheus.NewDesc("mrv_buffer_failed_commits_total",
		"Buffer commits that failed.", nil, nil)
	descLastCommit = prometheus.NewDesc("mrv_last_commit_timestamp_seconds",
		"Unix time of the last successful buffer commit.", nil, nil)
	descConnected = prometheus.NewDesc("mrv_uplink_connected",
		"1 when the MQTT uplink is connected.", nil, nil)
	descPublished = prometheus.NewDesc("mrv_uplink_published_blocks_total",
		"Blocks acknowledged by the broker since start.", nil, nil)
	descLatency = prometheus.NewDesc("mrv_publish_latency_seconds",
		"Time from a block's publish to its PUBACK.", nil, nil)
	descEmissions = prometheus.NewDesc("mrv_emissions_tonnes",
		"Tonnes CO2 so far in the live window, by emission source and window.", []string{"source", "window"}, nil)
	descClock = prometheus.NewDesc("mrv_clock_synchronised",
		"1 when the kernel reports the system clock synchronised.", nil, nil)
	descCertExpiry = prometheus.NewDesc("mrv_cert_expiry_seconds",
		"Seconds until the certificate expires (negative once expired).", []string{"cert"}, nil)
	descInfo = prometheus.NewDesc("mrv_agent_info",
		"Constant 1, labelled with the agent's version and key id.", []string{"version", "key_id"}, nil)
)

// collector turns a Snapshot into metrics at every scrape.
type collector struct{ s *Server }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReadings, descSourceUp, descPolls, descPollFailures, descBlocks,
		descUnpublished, descOldest, descBufferBytes, descBufferFileBytes, descFailedCommits, descLastCommit,
		descConnected, descPublished, descLatency, descEmissions, descClock, descCertExpiry, descInfo} {
		ch <- d
	}
}

// qualities are always exported, so that a series exists from the start.
var qualities = []string{"good", "uncertain", "bad"}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.p.Snapshot()
	now := c.s.now()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, src := range snap.Sources {
		seen := map[string]bool{}
		for _, q := range qualities {
			counter(descReadings, float64(src.Quality[q]), src.Name, q)
			seen[q] = true
		}
		other := make([]string, 0, len(src.Quality))
		for q := range src.Quality {
			if !seen[q] {
				other = append(other, q)
			}
		}
		sort.Strings(other)
		for _, q := range other {
			counter(descReadings, float64(src.Quality[q]), src.Name, q)
		}
		gauge(descSourceUp, bool01(src.State == StateUp), src.Name)
		counter(descPolls, float64(src.Polls), src.Name)
		counter(descPollFailures, float64(src.Failures), src.Name)
	}
	for _, st := range snap.Streams {
		counter(descBlocks, float64(st.Sealed), st.Name)
		gauge(descUnpublished, float64(st.Unpublished), st.Name)
	}
	gauge(descOldest, oldestUnpublished(snap, now).Seconds())
	gauge(descBufferBytes, float64(snap.Buffer.LiveBytes))
	gauge(descBufferFileBytes, float64(snap.Buffer.FileBytes))
	counter(descFailedCommits, float64(snap.Pipeline.FailedCommits))
	if !snap.Pipeline.LastCommit.IsZero() {
		gauge(descLastCommit, float64(snap.Pipeline.LastCommit.UnixNano())/1e9)
	}
	gauge(descConnected, bool01(snap.Uplink.Connected))
	counter(descPublished, float64(snap.Uplink.Published))
	h := snap.PublishLatency
	buckets := make(map[float64]uint64, len(h.Bounds))
	for i, b := range h.Bounds {
		buckets[b] = h.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(descLatency, h.Count, h.Sum, buckets)
	dup := map[[2]string]bool{} // a duplicate label set would fail the whole scrape
	for _, e := range snap.Emissions {
		if k := [2]string{e.Source, e.Window}; !dup[k] {
			dup[k] = true
			gauge(descEmissions, e.Tonnes, e.Source, e.Window)
		}
	}
	gauge(descClock, bool01(snap.Clock == ClockSynchronised))
	certs := map[string]bool{}
	for _, cert := range snap.Certificates {
		if !certs[cert.Name] {
			certs[cert.Name] = true
			gauge(descCertExpiry, cert.NotAfter.Sub(now).Seconds(), cert.Name)
		}
	}
	gauge(descInfo, 1, snap.Version, snap.KeyID)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
