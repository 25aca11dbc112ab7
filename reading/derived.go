package reading

import (
	"fmt"
	"strings"
)

// DerivedFlag is one bit of a derived record's flags (mrv-methods.md §5.2). Bit positions
// are part of the record format and never change meaning; new flags take new bits.
type DerivedFlag uint32

// Derived-value flags. Each says why a result is not a plain, complete, measured value.
const (
	DerivedSubstituted          DerivedFlag = 1 << 0  // a sub-interval was substituted (method in Substitution)
	DerivedProvisional          DerivedFlag = 1 << 1  // depends on period-end statistics; recomputed later
	DerivedEstimated            DerivedFlag = 1 << 2  // e.g. metal production from line current (Faraday)
	DerivedDerived              DerivedFlag = 1 << 3  // e.g. clinker from kiln feed and a lab factor
	DerivedDefaultFactor        DerivedFlag = 1 << 4  // a Tier 1 (published default) factor was used
	DerivedPartial              DerivedFlag = 1 << 5  // coverage < 1: some sub-interval is missing
	DerivedNotOperating         DerivedFlag = 1 << 6  // the unit did not operate in (part of) the window
	DerivedCounterReset         DerivedFlag = 1 << 7  // a counter went back implausibly; interval missing
	DerivedCounterJump          DerivedFlag = 1 << 8  // a counter rose faster than max_rate; interval missing
	DerivedCalRangeExceeded     DerivedFlag = 1 << 9  // an analyser value outside its calibrated range
	DerivedSubstitutionRequired DerivedFlag = 1 << 10 // missing, and no configured substitution applies
	DerivedBasisMismatch        DerivedFlag = 1 << 11 // wet/dry or reference-condition conflict: refused
	DerivedMissing              DerivedFlag = 1 << 12 // no value: the window is invalid
	DerivedStale                DerivedFlag = 1 << 13 // an input held longer than max_hold
	DerivedFrozen               DerivedFlag = 1 << 14 // an input did not change for longer than freeze_window
	DerivedOutage5Days          DerivedFlag = 1 << 15 // a CEMS parameter missing > 5 days (MRR Art. 45(1))
	DerivedNoFactor             DerivedFlag = 1 << 16 // no version of a factor was valid for the window
	DerivedBadInput             DerivedFlag = 1 << 17 // Bad or Uncertain readings were left out
)

var derivedFlagNames = []string{
	"substituted", "provisional", "estimated", "derived", "default-factor", "partial", "not-operating",
	"counter-reset", "counter-jump", "cal-range-exceeded", "substitution-required", "basis-mismatch",
	"missing", "stale", "frozen", "outage-5-days", "no-factor", "bad-input",
}

// Names returns the kebab-case names of the set flags, in bit order.
func (f DerivedFlag) Names() []string {
	var out []string
	for i, n := range derivedFlagNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String lists the set flags joined by "|", or "" when none is set.
func (f DerivedFlag) String() string { return strings.Join(f.Names(), "|") }

// Window kinds of a derived record.
const (
	WindowMinute = "minute"
	WindowHour   = "hour"
	WindowShift  = "shift"
	WindowDay    = "day"
	WindowBatch  = "batch"
)

// DerivedBody is the body of a derived record (kind 2): one closed window of one emission
// source. Keys are listed in docs/record-format.md. Numbers are exact decimals: the
// emissions engine computes in float64 (mrv-methods.md §1.5) and converts each result
// once, through FromFloat64 (the shortest decimal that reads back as the same float64).
type DerivedBody struct {
	Method       string         `cbor:"0,keyasint"`
	Window       string         `cbor:"1,keyasint"` // minute | hour | shift | day | batch
	Start        int64          `cbor:"2,keyasint"` // Unix ns, inclusive
	End          int64          `cbor:"3,keyasint"` // Unix ns, exclusive
	Values       []NamedValue   `cbor:"4,keyasint,omitempty"`
	Coverage     Value          `cbor:"5,keyasint"` // valid / expected time, 0..1
	Flags        uint32         `cbor:"6,keyasint,omitempty"`
	FlagNames    []string       `cbor:"7,keyasint,omitempty"` // Flags spelled out, in bit order
	Factors      []FactorRef    `cbor:"8,keyasint,omitempty"`
	Inputs       []DerivedInput `cbor:"9,keyasint,omitempty"`
	Revision     uint32         `cbor:"10,keyasint,omitempty"` // 0 first; +1 per recomputation
	Counts       DerivedCounts  `cbor:"11,keyasint"`
	Label        string         `cbor:"12,keyasint,omitempty"` // local label: "2026-11-27", "2026-11-27T06:00"
	Substitution string         `cbor:"13,keyasint,omitempty"` // MRR_EQ4 when Substituted
	Tier         uint8          `cbor:"14,keyasint,omitempty"` // declared tier (mrv-methods.md §2.1)
	Hours        *DerivedHours  `cbor:"15,keyasint,omitempty"` // shift and day windows
}

// NamedValue is one result of a window: a name ("co2", "co2e", "cf4", "production",
// "intensity"), an exact decimal, and a unit text ("t", "kg", "t/t", "GJ", "MWh").
type NamedValue struct {
	Name  string `cbor:"0,keyasint"`
	Value Value  `cbor:"1,keyasint"`
	Unit  string `cbor:"2,keyasint"`
}

// FactorRef names a factor record (or a calibration function) by id and version.
type FactorRef struct {
	ID      string `cbor:"0,keyasint"`
	Version string `cbor:"1,keyasint"`
}

// DerivedInput names the readings of one log that went into a result: seqs First..Last
// (inclusive) of origin/log_id, restricted to the listed tags.
type DerivedInput struct {
	Origin string   `cbor:"0,keyasint"`
	LogID  []byte   `cbor:"1,keyasint"`
	First  uint64   `cbor:"2,keyasint"`
	Last   uint64   `cbor:"3,keyasint"`
	Tags   []string `cbor:"4,keyasint"`
}

// DerivedCounts are the sample counts of mrv-methods.md §4 rule 1, summed over the
// window's input tags.
type DerivedCounts struct {
	Expected    uint64 `cbor:"0,keyasint"`
	Valid       uint64 `cbor:"1,keyasint"`
	Uncertain   uint64 `cbor:"2,keyasint,omitempty"`
	Bad         uint64 `cbor:"3,keyasint,omitempty"`
	Missing     uint64 `cbor:"4,keyasint,omitempty"`
	Substituted uint64 `cbor:"5,keyasint,omitempty"`
}

// DerivedHours summarises the hours of a shift or day window.
type DerivedHours struct {
	Expected     uint32 `cbor:"0,keyasint"`
	Valid        uint32 `cbor:"1,keyasint"` // complete hours, or valid under the valid-hour rule
	Substituted  uint32 `cbor:"2,keyasint,omitempty"`
	Missing      uint32 `cbor:"3,keyasint,omitempty"`
	NotOperating uint32 `cbor:"4,keyasint,omitempty"`
}

// Kind implements Body.
func (*DerivedBody) Kind() Kind { return KindDerived }

// derivedWire has DerivedBody's fields without its methods, for the default codec.
type derivedWire DerivedBody

// UnmarshalCBOR decodes strictly and refuses non-canonical decimals, like reading values.
func (b *DerivedBody) UnmarshalCBOR(data []byte) error {
	var w derivedWire
	if err := decMode.Unmarshal(data, &w); err != nil {
		return err
	}
	check := func(what string, v Value) error {
		if !v.IsCanonical() {
			return fmt.Errorf("%s [%d, %d]: %w", what, v.Mantissa, v.Exp, ErrNotCanonical)
		}
		return nil
	}
	if err := check("coverage", w.Coverage); err != nil {
		return err
	}
	for _, nv := range w.Values {
		if err := check("value "+nv.Name, nv.Value); err != nil {
			return err
		}
	}
	for _, in := range w.Inputs {
		if len(in.LogID) != 16 {
			return fmt.Errorf("input %s: log_id of %d bytes, want 16", in.Origin, len(in.LogID))
		}
	}
	*b = DerivedBody(w)
	return nil
}

// Value returns the named value and whether the body has it.
func (b *DerivedBody) Value(name string) (Value, bool) {
	for _, nv := range b.Values {
		if nv.Name == name {
			return nv.Value, true
		}
	}
	return Value{}, false
}
