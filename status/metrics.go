package status

import (
	"net/http"
	"slices"
)

// Metric descriptors. Every value comes from one Snapshot per scrape, so a scrape is
// consistent with itself.
var (
	descReadings = &desc{"mrv_readings_total",
		"Readings in committed blocks, by source and quality.", typeCounter, []string{"source", "quality"}}
	descSourceUp = &desc{"mrv_source_up",
		"1 when the source's last poll succeeded.", typeGauge, []string{"source"}}
	descPolls = &desc{"mrv_source_polls_total",
		"Polls attempted, retries during outages included.", typeCounter, []string{"source"}}
	descPollFailures = &desc{"mrv_source_poll_failures_total",
		"Polls that failed.", typeCounter, []string{"source"}}
	descBlocks = &desc{"mrv_blocks_sealed_total",
		"Blocks sealed and committed to the buffer since start, by stream.", typeCounter, []string{"stream"}}
	descUnpublished = &desc{"mrv_unpublished_blocks",
		"Blocks stored and not yet acknowledged by the broker, by stream.", typeGauge, []string{"stream"}}
	descOldest = &desc{"mrv_oldest_unpublished_seconds",
		"Age of the oldest unpublished block over all streams; 0 when none.", typeGauge, nil}
	descBufferBytes = &desc{"mrv_buffer_bytes",
		"Bytes of stored blocks (what buffer.max_bytes caps).", typeGauge, nil}
	descBufferFileBytes = &desc{"mrv_buffer_file_bytes",
		"Size of the buffer file.", typeGauge, nil}
	descFailedCommits = &desc{"mrv_buffer_failed_commits_total",
		"Buffer commits that failed.", typeCounter, nil}
	descLastCommit = &desc{"mrv_last_commit_timestamp_seconds",
		"Unix time of the last successful buffer commit.", typeGauge, nil}
	descConnected = &desc{"mrv_uplink_connected",
		"1 when the MQTT uplink is connected.", typeGauge, nil}
	descPublished = &desc{"mrv_uplink_published_blocks_total",
		"Blocks acknowledged by the broker since start.", typeCounter, nil}
	descLatency = &desc{"mrv_publish_latency_seconds",
		"Time from a block's publish to its PUBACK.", typeHistogram, nil}
	descEmissions = &desc{"mrv_emissions_tonnes",
		"Tonnes CO2 so far in the live window, by emission source and window.", typeGauge, []string{"source", "window"}}
	descClock = &desc{"mrv_clock_synchronised",
		"1 when the kernel reports the system clock synchronised.", typeGauge, nil}
	descCertExpiry = &desc{"mrv_cert_expiry_seconds",
		"Seconds until the certificate expires (negative once expired).", typeGauge, []string{"cert"}}
	descInfo = &desc{"mrv_agent_info",
		"Constant 1, labelled with the agent's version and key id.", typeGauge, []string{"version", "key_id"}}
)

// qualities are always exported, so that a series exists from the start.
var qualities = []string{"good", "uncertain", "bad"}

// serveMetrics answers a scrape: the agent's metrics from one Snapshot, then the Go runtime
// and process metrics.
func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	var e exposition
	s.writeMetrics(&e)
	writeGoMetrics(&e)
	writeProcessMetrics(&e, "/proc")
	if e.skipped > 0 {
		s.log.Debug("metrics: duplicate series left out", "series", e.skipped)
	}
	w.Header().Set("Content-Type", contentTypeText)
	_, _ = w.Write(e.b.Bytes())
}

// writeMetrics writes the agent's metrics from one Snapshot. Series with a label set
// already written (two sources of one name, say) are left out.
func (s *Server) writeMetrics(e *exposition) {
	snap := s.p.Snapshot()
	now := s.now()
	for _, src := range snap.Sources {
		other := make([]string, 0, len(src.Quality))
		for q := range src.Quality {
			if !slices.Contains(qualities, q) {
				other = append(other, q)
			}
		}
		slices.Sort(other)
		for _, q := range slices.Concat(qualities, other) {
			e.sample(descReadings, float64(src.Quality[q]), src.Name, q)
		}
	}
	for _, src := range snap.Sources {
		e.sample(descSourceUp, bool01(src.State == StateUp), src.Name)
	}
	for _, src := range snap.Sources {
		e.sample(descPolls, float64(src.Polls), src.Name)
	}
	for _, src := range snap.Sources {
		e.sample(descPollFailures, float64(src.Failures), src.Name)
	}
	for _, st := range snap.Streams {
		e.sample(descBlocks, float64(st.Sealed), st.Name)
	}
	for _, st := range snap.Streams {
		e.sample(descUnpublished, float64(st.Unpublished), st.Name)
	}
	e.sample(descOldest, oldestUnpublished(snap, now).Seconds())
	e.sample(descBufferBytes, float64(snap.Buffer.LiveBytes))
	e.sample(descBufferFileBytes, float64(snap.Buffer.FileBytes))
	e.sample(descFailedCommits, float64(snap.Pipeline.FailedCommits))
	if !snap.Pipeline.LastCommit.IsZero() {
		e.sample(descLastCommit, float64(snap.Pipeline.LastCommit.UnixNano())/1e9)
	}
	e.sample(descConnected, bool01(snap.Uplink.Connected))
	e.sample(descPublished, float64(snap.Uplink.Published))
	e.histogram(descLatency, snap.PublishLatency)
	for _, em := range snap.Emissions {
		e.sample(descEmissions, em.Tonnes, em.Source, em.Window)
	}
	e.sample(descClock, bool01(snap.Clock == ClockSynchronised))
	for _, cert := range snap.Certificates {
		e.sample(descCertExpiry, cert.NotAfter.Sub(now).Seconds(), cert.Name)
	}
	e.sample(descInfo, 1, snap.Version, snap.KeyID)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
