package status

import (
	"sync/atomic"
	"time"
)

// Provider is what the server needs from the agent. Snapshot must be safe to call from any
// goroutine and must not block on the pipeline.
type Provider interface {
	Snapshot() Snapshot
}

// Source states.
const (
	StateUp      = "up"
	StateDown    = "down"
	StateUnknown = "unknown" // not polled successfully yet
)

// Clock synchronisation states.
const (
	ClockSynchronised   = "synchronised"
	ClockUnsynchronised = "unsynchronised"
	ClockUnknown        = "unknown"
)

// Validity of an emission interval.
const (
	ValidityValid       = "valid"
	ValiditySubstituted = "substituted"
	ValidityInvalid     = "invalid"
)

// Snapshot is the agent's state at one instant. Zero times mean "never".
type Snapshot struct {
	Time         time.Time     `json:"time"`
	Version      string        `json:"version"`
	Site         string        `json:"site"`
	Gateway      string        `json:"gateway"`
	KeyID        string        `json:"key_id"`
	Clock        string        `json:"clock"` // ClockSynchronised, ClockUnsynchronised or ClockUnknown
	Pipeline     Pipeline      `json:"pipeline"`
	Sources      []Source      `json:"sources"`
	Streams      []Stream      `json:"streams"`
	Uplink       Uplink        `json:"uplink"`
	Buffer       Buffer        `json:"buffer"`
	Emissions    []Emission    `json:"emissions"`    // live emission windows; empty without emission sources
	Certificates []Certificate `json:"certificates"` // e.g. OPC UA client certificates
	// PublishLatency is the distribution of the time from a block's publish to its PUBACK.
	PublishLatency HistogramSnapshot `json:"-"`
}

// Pipeline describes the sealing loop.
type Pipeline struct {
	Started    time.Time `json:"started,omitzero"`     // when Run started
	LastCommit time.Time `json:"last_commit,omitzero"` // last successful buffer commit
	// IdleSeconds is the time since the last successful commit (since Started before the
	// first), measured on a monotonic clock so that a wall-clock step does not distort it.
	IdleSeconds   float64 `json:"idle_seconds"`
	Readings      uint64  `json:"readings"` // readings in committed blocks
	Blocks        uint64  `json:"blocks"`   // blocks committed
	FailedCommits uint64  `json:"failed_commits"`
}

// Source is one configured source.
type Source struct {
	Name        string    `json:"name"`
	State       string    `json:"state"` // StateUp, StateDown or StateUnknown
	LastPoll    time.Time `json:"last_poll,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	DownSince   time.Time `json:"down_since,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Polls       uint64    `json:"polls"`
	Failures    uint64    `json:"failures"`
	Missed      uint64    `json:"missed"`
	// Quality counts the readings of the source in committed blocks by quality (good,
	// uncertain, bad).
	Quality map[string]uint64 `json:"quality_counts"`
	// ReadingsPerSecond is filled by the server from its samples.
	ReadingsPerSecond float64 `json:"readings_per_second"`
}

// Readings is the sum of the source's quality counts.
func (s Source) Readings() uint64 {
	var n uint64
	for _, c := range s.Quality {
		n += c
	}
	return n
}

// Stream is one hash-chained stream.
type Stream struct {
	Name              string    `json:"name"`
	LogID             string    `json:"log_id"`
	NextSeq           uint64    `json:"next_seq"`
	Sealed            uint64    `json:"sealed"` // blocks committed since start
	Stored            int       `json:"stored"` // blocks in the buffer
	Unpublished       int       `json:"unpublished"`
	OldestUnpublished time.Time `json:"oldest_unpublished,omitzero"`
	// OldestUnpublishedSeconds is the age of the oldest unpublished block, filled by the server.
	OldestUnpublishedSeconds float64 `json:"oldest_unpublished_seconds"`
}

// Uplink is the MQTT publisher's state.
type Uplink struct {
	Connected  bool      `json:"connected"`
	InFlight   int       `json:"in_flight"`
	LastAck    time.Time `json:"last_puback,omitzero"`
	Published  uint64    `json:"published"`
	Reconnects uint64    `json:"reconnects"`
	LastError  string    `json:"last_error,omitempty"`
}

// Buffer is the durable store's state.
type Buffer struct {
	Open        bool   `json:"open"`
	Failing     bool   `json:"failing"` // the last commit attempt failed
	LiveBytes   int64  `json:"live_bytes"`
	FileBytes   int64  `json:"file_bytes"`
	Quarantined uint64 `json:"quarantined"`
	Dropped     uint64 `json:"dropped"`
}

// Emission is one live emission window of one emission source.
type Emission struct {
	Source   string    `json:"source"`
	Window   string    `json:"window"` // e.g. "minute", "hour", "day"
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Tonnes   float64   `json:"tonnes"`   // t CO2 so far in the window
	Validity string    `json:"validity"` // ValidityValid, ValiditySubstituted, ValidityInvalid, or another method-specific word
}

// Certificate is a certificate the agent holds, for its expiry.
type Certificate struct {
	Name     string    `json:"name"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
}

// HistogramSnapshot is a cumulative histogram: Counts[i] observations were <= Bounds[i].
type HistogramSnapshot struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Histogram is a lock-free histogram of durations in seconds, for the agent's own
// measurements (the publish latency).
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last one is +Inf
	sumNs  atomic.Int64
}

// LatencyBounds are the default bucket bounds of publish latencies, in seconds.
var LatencyBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// NewHistogram returns a histogram with the given increasing upper bounds (seconds).
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: append([]float64(nil), bounds...), counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records one duration. Safe for concurrent use.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(h.bounds) && s > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// Snapshot returns the cumulative counts.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Bounds: h.bounds, Counts: make([]uint64, len(h.bounds))}
	var c uint64
	for i := range h.bounds {
		c += h.counts[i].Load()
		s.Counts[i] = c
	}
	s.Count = c + h.counts[len(h.bounds)].Load()
	s.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return s
}
