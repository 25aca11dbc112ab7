package emissions

import (
	"strconv"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Window is the state of one window for the status page: open windows are evaluated on
// what they hold so far.
type Window struct {
	Stream   string
	Method   string
	Kind     string // minute | hour | day | rolling-60m | total
	Start    time.Time
	End      time.Time
	Values   map[string]float64
	Coverage float64
	Flags    reading.DerivedFlag
	Alarm    bool // a CEMS parameter missing > 5 days (§3.4)
}

// Stats counts what the calculator could not place.
type Stats struct {
	// LateDropped counts readings older than the last applied reading of their tag.
	LateDropped uint64
	// Lost counts valid contributions to windows no longer retained.
	Lost uint64
}

// Stats returns the counters summed over every emission.
func (c *Calculator) Stats() Stats {
	var s Stats
	for _, j := range c.jobs {
		s.LateDropped += j.st.Late
		s.Lost += j.st.Lost
	}
	return s
}

// Live returns, per emission, the open minute and hour, the current day so far (closed
// hours plus the open one), the rolling last 60 closed minutes (recomputed from the
// minutes, §4) and the cumulative total since the state began.
func (c *Calculator) Live() []Window {
	var out []Window
	c.live = true
	defer func() { c.live = false }()
	for _, j := range c.jobs {
		st := j.st
		if st.NextClose == 0 {
			continue
		}
		alarm := false
		for _, lv := range st.LastValid {
			alarm = alarm || st.NextClose-lv > outageAlarm
		}
		mk := func(kind string, start, end int64, s *summary) Window {
			w := Window{Stream: j.cfg.Name, Method: j.cfg.Method, Kind: kind, Start: time.Unix(0, start).UTC(),
				End: time.Unix(0, end).UTC(), Values: map[string]float64{}, Coverage: s.Cov, Flags: reading.DerivedFlag(s.Flags), Alarm: alarm}
			for _, v := range s.Values {
				w.Values[v.Name] = v.V
			}
			return w
		}
		var open *summary
		if b := st.Minutes[st.NextClose]; b != nil {
			out = append(out, mk(reading.WindowMinute, b.Start, b.End, c.eval(j, b, reading.WindowMinute)))
		}
		hs := c.clk.hourStart(st.NextClose)
		if b := st.Hours[hs]; b != nil {
			saved := *b
			open = c.eval(j, &saved, reading.WindowHour)
			out = append(out, mk(reading.WindowHour, b.Start, b.End, open))
		}
		ds, de := c.clk.dayBounds(st.NextClose)
		day := &period{Kind: reading.WindowDay, Start: ds, End: de, Hours: map[int64]*summary{}}
		if p := st.Periods[reading.WindowDay+":"+itoa(ds)]; p != nil {
			for k, v := range p.Hours {
				day.Hours[k] = v
			}
		}
		if open != nil {
			day.Hours[hs] = open
		}
		out = append(out, mk(reading.WindowDay, ds, de, c.combine(j, day)))
		var r Window
		r.Values = map[string]float64{}
		var me, mp, e float64
		var flags uint32
		for _, m := range st.Recent {
			e += m.E
			me += m.MatchedE
			mp += m.MatchedP
			flags |= m.Flags
		}
		if len(st.Recent) > 0 {
			r = Window{Stream: j.cfg.Name, Method: j.cfg.Method, Kind: "rolling-60m", Start: time.Unix(0, st.Recent[0].Start).UTC(),
				End: time.Unix(0, st.NextClose).UTC(), Values: map[string]float64{"emission": e}, Coverage: float64(countHas(st.Recent)) / 60,
				Flags: reading.DerivedFlag(flags), Alarm: alarm}
			if mp > 0 {
				r.Values["intensity"] = me / mp
				r.Values["production_matched"] = mp
			}
			out = append(out, r)
		}
		out = append(out, Window{Stream: j.cfg.Name, Method: j.cfg.Method, Kind: "total", End: time.Unix(0, st.NextClose).UTC(),
			Values: map[string]float64{"emission": st.Total}, Alarm: alarm})
	}
	return out
}

func countHas(ms []minuteSum) int {
	n := 0
	for _, m := range ms {
		if m.HasE {
			n++
		}
	}
	return n
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
