package emissions

import (
	"math"
	"slices"

	"github.com/mrv-agent/mrv-agent/reading"
)

// The types of this file are the calculator's whole mutable state: Snapshot encodes them,
// Restore decodes them. Exported fields only, no NaN or Inf (JSON has none).

type srcKey struct {
	Origin string
	LogID  [16]byte
}

type calcState struct {
	Version int
	Srcs    []srcKey
	Jobs    []*jobState
}

// pend is a reading observed but not yet swept (its time is at or after the watermark).
type pend struct {
	Role  int
	Src   int
	Seq   uint64
	T     int64
	HasV  bool
	V     reading.Value
	Sev   uint8
	Flags uint32
}

// roleState is what a role holds between readings: the last reading (a counter's start
// point, or a rate's held value).
type roleState struct {
	Has     bool
	T       int64
	Raw     reading.Value // counters: the exact register value
	V       float64       // rates: the held value, calibrated, in base units
	OK      bool          // the held value is valid
	Flags   uint32        // derived flags the held value carries
	Src     int
	Seq     uint64
	ChangeT int64   // freeze detection: when the value last changed
	LastRaw float64 // freeze detection: the last raw value
}

// agg accumulates one role (or CEMS channel) over one window.
type agg struct {
	Amount   float64 `json:",omitempty"` // integrated amount, base unit
	Weighted float64 `json:",omitempty"` // ∫ value dt, base unit × s
	ValidS   float64 `json:",omitempty"` // seconds of valid data
	ZeroS    float64 `json:",omitempty"` // seconds of valid data equal to 0 (operating: not operating)
	NValid   uint32  `json:",omitempty"`
	NUnc     uint32  `json:",omitempty"`
	NBad     uint32  `json:",omitempty"`
	Flags    uint32  `json:",omitempty"`
}

func (a *agg) mean() float64 {
	if a.ValidS <= 0 {
		return math.NaN()
	}
	return a.Weighted / a.ValidS
}

// inRange is the provenance of a window: seqs First..Last of one log, and which roles'
// tags (a bit per role) contributed.
type inRange struct {
	Src   int
	First uint64
	Last  uint64
	Tags  uint64
}

func addProv(ins []inRange, src int, seq uint64, roleBit uint64) []inRange {
	for i := range ins {
		if ins[i].Src == src {
			ins[i].First = min(ins[i].First, seq)
			ins[i].Last = max(ins[i].Last, seq)
			ins[i].Tags |= roleBit
			return ins
		}
	}
	return append(ins, inRange{Src: src, First: seq, Last: seq, Tags: roleBit})
}

func mergeProv(dst, src []inRange) []inRange {
	for _, r := range src {
		found := false
		for i := range dst {
			if dst[i].Src == r.Src {
				dst[i].First = min(dst[i].First, r.First)
				dst[i].Last = max(dst[i].Last, r.Last)
				dst[i].Tags |= r.Tags
				found = true
				break
			}
		}
		if !found {
			dst = append(dst, r)
		}
	}
	return dst
}

// bucket is one window (minute, hour or batch) of one emission.
type bucket struct {
	Start, End int64
	Aggs       []agg
	Inputs     []inRange `json:",omitempty"`
	Emitted    bool      `json:",omitempty"`
	Dirty      bool      `json:",omitempty"`
	Rev        uint32    `json:",omitempty"`
	Label      string    `json:",omitempty"`
	// Minute-matched sums (hours of additive methods, §4 rule 3).
	MatchedE float64  `json:",omitempty"`
	MatchedP float64  `json:",omitempty"`
	Sum      *summary `json:",omitempty"` // the last emitted result
}

// nv is a named result value.
type nv struct {
	Name string
	V    float64
	Unit string
}

// summary is the compact form of a closed window that larger windows and the rolling
// window are built from.
type summary struct {
	Values       []nv    `json:",omitempty"` // first = primary (co2 or co2e); none when missing
	P            float64 `json:",omitempty"` // production over valid time, t
	HasP         bool    `json:",omitempty"`
	MatchedE     float64 `json:",omitempty"`
	MatchedP     float64 `json:",omitempty"`
	Flags        uint32  `json:",omitempty"`
	Cov          float64 `json:",omitempty"`
	ExpS         float64 `json:",omitempty"`
	Counts       reading.DerivedCounts
	Factors      []reading.FactorRef   `json:",omitempty"`
	Inputs       []inRange             `json:",omitempty"`
	Substitution string                `json:",omitempty"`
	Valid        bool                  `json:",omitempty"` // a valid hour (§3.3) or a complete one
	Hours        *reading.DerivedHours `json:",omitempty"`
}

// primary returns the window's primary result (t CO2 or t CO2e); false when the window
// has none (it may still carry production).
func (s *summary) primary() (float64, bool) {
	if s == nil || len(s.Values) == 0 {
		return 0, false
	}
	switch s.Values[0].Name {
	case "production", "production_matched", "intensity":
		return 0, false
	}
	return s.Values[0].V, true
}

// period is a shift or a day: the summaries of its hours.
type period struct {
	Kind    string
	Start   int64
	End     int64
	Label   string
	Hours   map[int64]*summary
	Emitted bool   `json:",omitempty"`
	Dirty   bool   `json:",omitempty"`
	Rev     uint32 `json:",omitempty"`
}

// minuteSum is one closed minute of the rolling window.
type minuteSum struct {
	Start    int64
	E        float64 `json:",omitempty"`
	HasE     bool    `json:",omitempty"`
	MatchedE float64 `json:",omitempty"`
	MatchedP float64 `json:",omitempty"`
	Flags    uint32  `json:",omitempty"`
}

// welford holds running year-to-date statistics of valid hourly concentrations (§3.4).
type welford struct {
	Year int     `json:",omitempty"`
	N    float64 `json:",omitempty"`
	Mean float64 `json:",omitempty"`
	M2   float64 `json:",omitempty"`
}

func (w *welford) add(x float64) {
	w.N++
	d := x - w.Mean
	w.Mean += d / w.N
	w.M2 += d * (x - w.Mean)
}

// sd is the sample standard deviation.
func (w *welford) sd() float64 {
	if w.N < 2 {
		return math.NaN()
	}
	return math.Sqrt(w.M2 / (w.N - 1))
}

type jobState struct {
	Name      string
	Method    string
	Pending   []pend `json:",omitempty"`
	Roles     []roleState
	Cursor    int64
	NextClose int64 // start of the next minute to close; 0 = not started
	Minutes   map[int64]*bucket
	Hours     map[int64]*bucket
	Periods   map[string]*period
	Batches   []*bucket   `json:",omitempty"`
	BatchID   *float64    `json:",omitempty"`
	Recent    []minuteSum `json:",omitempty"`
	YTD       welford
	LastValid map[int]int64 `json:",omitempty"` // CEMS: per role, end of the last valid hour
	Total     float64
	Late      uint64 `json:",omitempty"`
	Lost      uint64 `json:",omitempty"`
}

func newJobState(name, method string, roles int) *jobState {
	return &jobState{
		Name: name, Method: method, Roles: make([]roleState, roles),
		Minutes: map[int64]*bucket{}, Hours: map[int64]*bucket{}, Periods: map[string]*period{},
		LastValid: map[int]int64{},
	}
}

func sortRefs(refs []reading.FactorRef) []reading.FactorRef {
	slices.SortFunc(refs, func(a, b reading.FactorRef) int {
		if a.ID != b.ID {
			if a.ID < b.ID {
				return -1
			}
			return 1
		}
		switch {
		case a.Version < b.Version:
			return -1
		case a.Version > b.Version:
			return 1
		}
		return 0
	})
	return slices.Compact(refs)
}
