package status

import (
	"maps"
	"sync"
	"time"
)

// point is one bucket of the chart history.
type point struct {
	Start     time.Time
	Covered   time.Duration             // sampled time attributed to the bucket
	Readings  map[string]uint64         // readings committed during the bucket, per source
	Backlog   int                       // most unpublished blocks (all streams) seen in the bucket
	Oldest    float64                   // oldest unpublished block's age seen in the bucket, seconds
	Emissions map[string]emissionSample // per emission source
}

// emissionSample is an emission source's rate in a bucket: t CO2 per minute in its
// shortest live window, and the worst validity seen.
type emissionSample struct {
	PerMinute float64
	Validity  string
}

// history is a ring of per-bucket samples (one hour of minutes by default) plus the
// latest per-source reading rates.
type history struct {
	bucket time.Duration
	n      int

	// mu guards the fields below.
	mu     sync.Mutex
	points []point            // oldest first, at most n
	last   map[string]uint64  // cumulative readings per source at the last sample
	lastT  time.Time          // time of the last sample
	rate   map[string]float64 // readings/s per source over the last sample period
}

func newHistory(bucket time.Duration, n int) *history {
	return &history{bucket: bucket, n: n, last: map[string]uint64{}, rate: map[string]float64{}}
}

// add folds one snapshot taken at now into the current bucket.
func (h *history) add(snap Snapshot, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var dt time.Duration
	if !h.lastT.IsZero() && now.After(h.lastT) {
		dt = now.Sub(h.lastT)
	}
	start := now.Truncate(h.bucket)
	if len(h.points) == 0 || !h.points[len(h.points)-1].Start.Equal(start) {
		h.points = append(h.points, point{Start: start, Readings: map[string]uint64{}, Emissions: map[string]emissionSample{}})
		if len(h.points) > h.n {
			h.points = append(h.points[:0], h.points[len(h.points)-h.n:]...)
		}
	}
	p := &h.points[len(h.points)-1]
	p.Covered += dt
	cur := make(map[string]uint64, len(snap.Sources))
	for _, src := range snap.Sources {
		c := src.Readings()
		cur[src.Name] = c
		prev, ok := h.last[src.Name]
		if !ok || c < prev || dt == 0 {
			continue
		}
		p.Readings[src.Name] += c - prev
		h.rate[src.Name] = float64(c-prev) / dt.Seconds()
	}
	h.last, h.lastT = cur, now
	backlog := 0
	for _, st := range snap.Streams {
		backlog += st.Unpublished
	}
	p.Backlog = max(p.Backlog, backlog)
	p.Oldest = max(p.Oldest, oldestUnpublished(snap, now).Seconds())
	for src, w := range shortestWindows(snap.Emissions) {
		end := w.End
		if now.Before(end) {
			end = now
		}
		elapsed := end.Sub(w.Start)
		if elapsed < time.Second {
			elapsed = time.Second
		}
		e := emissionSample{PerMinute: w.Tonnes / elapsed.Minutes(), Validity: w.Validity}
		if old, ok := p.Emissions[src]; ok && validityRank(old.Validity) > validityRank(e.Validity) {
			e.Validity = old.Validity
		}
		p.Emissions[src] = e
	}
}

// shortestWindows picks each emission source's shortest live window.
func shortestWindows(ws []Emission) map[string]Emission {
	out := map[string]Emission{}
	for _, w := range ws {
		if old, ok := out[w.Source]; !ok || w.End.Sub(w.Start) < old.End.Sub(old.Start) {
			out[w.Source] = w
		}
	}
	return out
}

// validityRank orders validities from best to worst; unknown words rank between valid and
// substituted.
func validityRank(v string) int {
	switch v {
	case ValidityValid, "":
		return 0
	case ValiditySubstituted:
		return 2
	case ValidityInvalid:
		return 3
	}
	return 1
}

// rates returns a copy of the latest readings/s per source.
func (h *history) rates() map[string]float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.rate)
}

// points returns a deep copy of the buckets, oldest first.
func (h *history) snapshot() []point {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]point, len(h.points))
	for i, p := range h.points {
		p.Readings = maps.Clone(p.Readings)
		p.Emissions = maps.Clone(p.Emissions)
		out[i] = p
	}
	return out
}
