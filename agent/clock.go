package agent

import (
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// clockStepThreshold is the disagreement between the wall clock and the monotonic clock
// over one tick that counts as a step (NTP slews far more slowly than this).
const clockStepThreshold = time.Second

// clockWatch detects wall-clock steps by comparing the wall clock with the monotonic clock
// between ticks.
type clockWatch struct {
	start    time.Time // monotonic origin
	lastWall time.Time
	lastMono time.Duration
}

// checkClock seals a gap-time record (reason clock-step) in every stream when the wall
// clock jumped since the last tick. The interval runs between where the wall clock should
// have been and where it is, whichever way it jumped.
func (a *Agent) checkClock(now time.Time) {
	c := &a.clock
	if c.start.IsZero() {
		c.start = time.Now()
	}
	mono := time.Since(c.start)
	wall := now.Round(0) // strip any monotonic reading: compare wall times only
	defer func() { c.lastWall, c.lastMono = wall, mono }()
	if c.lastWall.IsZero() {
		return
	}
	expected := c.lastWall.Add(mono - c.lastMono)
	step := wall.Sub(expected)
	if step.Abs() < clockStepThreshold {
		return
	}
	from, to := expected, wall
	if to.Before(from) {
		from, to = to, from
	}
	a.log.Warn("wall clock stepped", "step_seconds", step.Seconds())
	for _, name := range a.order {
		st := a.streams[name]
		st.pending = append(st.pending, reading.Record{Kind: reading.KindGapTime, Time: wall.UnixNano(),
			Body: &reading.GapTimeBody{From: from.UnixNano(), To: to.UnixNano(), Reason: reading.ReasonClockStep}})
	}
}
