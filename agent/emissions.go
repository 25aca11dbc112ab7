package agent

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/emissions"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/status"
)

// metaEmissions holds the calculator's state in the buffer. It commits in the same bbolt
// Update as the blocks whose readings produced it and the derived records it closed, so a
// crash never counts a reading twice nor loses its contribution (issue 7).
const metaEmissions = "emissions"

// emissionsRun ties the pure calculator to the pipeline. Owned by the pipeline goroutine,
// except live, which the status server reads.
type emissionsRun struct {
	cfg       *config.Config
	calc      *emissions.Calculator
	streams   map[string]bool
	lag       time.Duration // how far the watermark trails the clock
	watermark time.Time
	committed []byte // the snapshot of the last successful commit
	live      atomic.Pointer[[]status.Emission]
	windows   atomic.Pointer[[]emissions.Window]
}

// newEmissionsRun builds the calculator and restores its committed state, if any.
func newEmissionsRun(cfg *config.Config, snapshot []byte) (*emissionsRun, error) {
	calc, err := emissions.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("emissions: %w", err)
	}
	e := &emissionsRun{cfg: cfg, calc: calc, streams: map[string]bool{}, committed: snapshot}
	for _, em := range cfg.Emissions {
		e.streams[em.Name] = true
	}
	if snapshot != nil {
		if err := calc.Restore(snapshot); err != nil {
			return nil, fmt.Errorf("emissions: restore state: %w", err)
		}
	}
	// A reading reaches the pipeline at most a poll timeout after its time and is sealed
	// within a tick: windows close only once nothing earlier can still arrive.
	var maxTimeout time.Duration
	for _, s := range cfg.Sources {
		maxTimeout = max(maxTimeout, s.Timeout.D())
	}
	e.lag = maxTimeout + cfg.Blocks.MaxAge.D()
	empty := []status.Emission{}
	e.live.Store(&empty)
	e.windows.Store(&[]emissions.Window{})
	return e, nil
}

// observe feeds the calculator the reading records of a stream just sealed; first is the
// seq of recs[0].
func (e *emissionsRun) observe(st *stream, first uint64, recs []reading.Record) {
	for i, rec := range recs {
		if rec.Kind != reading.KindReading {
			continue
		}
		if r, ok := rec.Reading(); ok {
			e.calc.Observe(st.Origin, st.LogID, first+uint64(i), r)
		}
	}
}

// advance moves the watermark (never backwards) and returns the derived records to seal,
// by emission stream, and the state to commit with them.
func (e *emissionsRun) advance(now time.Time) (map[string][]reading.Record, []byte, error) {
	if wm := now.Add(-e.lag); wm.After(e.watermark) {
		e.watermark = wm
	}
	out := map[string][]reading.Record{}
	for _, r := range e.calc.Advance(e.watermark) {
		out[r.Stream] = append(out[r.Stream], r.Record)
	}
	snap, err := e.calc.Snapshot()
	if err != nil {
		return nil, nil, fmt.Errorf("emissions snapshot: %w", err)
	}
	return out, snap, nil
}

// rollback returns the calculator to the last committed state after a failed commit: the
// same readings are sealed and observed again at the next tick.
func (e *emissionsRun) rollback() error {
	if e.committed == nil {
		calc, err := emissions.New(e.cfg)
		if err != nil {
			return err
		}
		e.calc = calc
		return nil
	}
	return e.calc.Restore(e.committed)
}

// commit records a successful commit's state and refreshes the live windows.
func (e *emissionsRun) commit(snap []byte) {
	e.committed = snap
	var ws []status.Emission
	windows := e.calc.Live()
	e.windows.Store(&windows)
	for _, w := range windows {
		t := Tonnes(w)
		validity := status.ValidityValid
		switch {
		case w.Flags&reading.DerivedMissing != 0:
			validity = status.ValidityInvalid
		case w.Flags&reading.DerivedSubstituted != 0:
			validity = status.ValiditySubstituted
		case w.Flags&(reading.DerivedPartial|reading.DerivedBadInput|reading.DerivedStale|reading.DerivedFrozen) != 0:
			validity = "partial"
		}
		ws = append(ws, status.Emission{Source: w.Stream, Window: w.Kind, Start: w.Start, End: w.End, Tonnes: t, Validity: validity})
	}
	if ws == nil {
		ws = []status.Emission{}
	}
	e.live.Store(&ws)
}

// liveEmissions is the status page's view of the open windows (safe from any goroutine).
func (a *Agent) liveEmissions() []status.Emission {
	if a.emis == nil {
		return []status.Emission{}
	}
	return *a.emis.live.Load()
}

// EmissionWindows returns the emission windows as of the last commit: the open minute,
// hour and day, the rolling last 60 minutes (with intensity where production is bound)
// and the running total. Safe from any goroutine.
func (a *Agent) EmissionWindows() []emissions.Window {
	if a.emis == nil {
		return nil
	}
	return *a.emis.windows.Load()
}

// Tonnes is a window's emission in tonnes: CO2, or CO2e for the PFC methods.
func Tonnes(w emissions.Window) float64 {
	for _, k := range []string{"co2", "co2e", "emission"} {
		if v, ok := w.Values[k]; ok {
			return v
		}
	}
	return 0
}
