package emissions

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

func clinkerCalc(t *testing.T, tz string, e config.Emission) *Calculator {
	e.Name, e.Method = "proc", "clinker-b"
	if e.Inputs == nil {
		e.Inputs = map[string]string{}
	}
	e.Inputs["clinker"] = "s.clinker"
	e.Factors = map[string]string{"ef_clinker": "efc"}
	c, err := New(testConfig(t, tz, []tagDef{{id: "clinker", unit: "t/h"}, {id: "run", unit: "1"}, {id: "total", unit: "t", kind: "counter"}}, time.Minute,
		[]config.Factor{fac(t, "efc", "0.525", "t CO2/t")}, e))
	require.NoError(t, err)
	return c
}

// TestLocalDayAndShifts: days and shifts follow gateway.timezone, with DST (the spring
// day has 23 hours, so its night shift 7).
func TestLocalDayAndShifts(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	c := clinkerCalc(t, "Europe/Berlin", config.Emission{Shifts: []string{"06:00", "14:00", "22:00"}})
	f := &feeder{c: c}
	start := time.Date(2026, 3, 28, 22, 0, 0, 0, loc)
	n := int(time.Date(2026, 3, 30, 0, 0, 0, 0, loc).Sub(start) / time.Minute)
	rateMinutes(f, "clinker", start, n+1, constant("100"))
	f.advance(start.Add(time.Duration(n) * time.Minute))
	day := find(t, f.out, "proc", reading.WindowDay, time.Date(2026, 3, 29, 0, 0, 0, 0, loc))
	require.Equal(t, "2026-03-29", day.Label)
	require.Equal(t, uint32(23), day.Hours.Expected)
	requireRel(t, 23*100*0.525, val(t, day, "co2"))
	night := find(t, f.out, "proc", reading.WindowShift, start)
	require.Equal(t, "2026-03-28T22:00", night.Label)
	require.Equal(t, int64(7*time.Hour), night.End-night.Start, "22:00 to 06:00 across the spring-forward is 7 h")
	requireRel(t, 7*100*0.525, val(t, night, "co2"))
}

func TestNotOperating(t *testing.T) {
	c := clinkerCalc(t, "UTC", config.Emission{Inputs: map[string]string{"operating": "s.run"}})
	f := &feeder{c: c}
	rateMinutes(f, "clinker", t0, 121, constant("0"))
	rateMinutes(f, "run", t0, 121, func(i int) (string, reading.Severity) {
		if i < 60 {
			return "0", reading.Good
		}
		return "1", reading.Good
	})
	f.advance(t0.Add(2 * time.Hour))
	h := find(t, f.out, "proc", reading.WindowHour, t0)
	require.True(t, hasFlag(h, reading.DerivedNotOperating))
	require.False(t, hasFlag(h, reading.DerivedMissing|reading.DerivedPartial), h.FlagNames)
	requireRel(t, 0, val(t, h, "co2"))
	h2 := find(t, f.out, "proc", reading.WindowHour, t0.Add(time.Hour))
	require.False(t, hasFlag(h2, reading.DerivedNotOperating))
}

func TestMissingAndBadFlagged(t *testing.T) {
	c := clinkerCalc(t, "UTC", config.Emission{})
	f := &feeder{c: c}
	rateMinutes(f, "clinker", t0, 60, func(i int) (string, reading.Severity) {
		switch {
		case i < 30:
			return "100", reading.Good
		case i < 40:
			return "100", reading.Uncertain
		}
		return "", reading.Bad
	})
	f.advance(t0.Add(time.Hour))
	h := find(t, f.out, "proc", reading.WindowHour, t0)
	requireRel(t, 50*0.525, val(t, h, "co2"), "half an hour of data, never scaled up")
	require.Equal(t, "0.5", h.Coverage.String())
	require.True(t, hasFlag(h, reading.DerivedPartial|reading.DerivedBadInput|reading.DerivedSubstitutionRequired), h.FlagNames)
	require.Equal(t, reading.DerivedCounts{Expected: 60, Valid: 30, Uncertain: 10, Bad: 20}, h.Counts)
}

func TestStaleBeyondMaxHold(t *testing.T) {
	c := clinkerCalc(t, "UTC", config.Emission{})
	f := &feeder{c: c}
	f.good("clinker", t0, "60")
	f.advance(t0.Add(time.Hour))
	h := find(t, f.out, "proc", reading.WindowHour, t0)
	requireRel(t, 2*0.525, val(t, h, "co2"), "held for max_hold (2 min) only")
	require.True(t, hasFlag(h, reading.DerivedStale|reading.DerivedPartial), h.FlagNames)
}

func TestFrozen(t *testing.T) {
	c := clinkerCalc(t, "UTC", config.Emission{FreezeWindow: config.Duration(10 * time.Minute)})
	f := &feeder{c: c}
	rateMinutes(f, "clinker", t0, 61, constant("100"))
	f.advance(t0.Add(time.Hour))
	h := find(t, f.out, "proc", reading.WindowHour, t0)
	require.True(t, hasFlag(h, reading.DerivedFrozen), h.FlagNames)
	requireRel(t, 11*100.0/60*0.525, val(t, h, "co2"), "valid until the value has not changed for 10 min")
}

// TestLateCounterRevises: a counter silent past max_hold leaves its windows partial; the
// reading that ends the silence revises them (revision 1), it does not overwrite.
func TestLateCounterRevises(t *testing.T) {
	c, err := New(testConfig(t, "UTC", []tagDef{{id: "kwh", unit: "kWh", kind: "counter"}}, time.Minute,
		[]config.Factor{fac(t, "grid", "0.5", "t CO2/MWh")},
		config.Emission{Name: "el", Method: "electricity", Inputs: map[string]string{"energy": "s.kwh"}, Factors: map[string]string{"ef_grid": "grid"}}))
	require.NoError(t, err)
	f := &feeder{c: c}
	f.good("kwh", t0, "0")
	f.good("kwh", t0.Add(time.Minute), "1000")
	rs := f.advance(t0.Add(10 * time.Minute))
	require.NotEmpty(t, rs)
	m5 := find(t, rs, "el", reading.WindowMinute, t0.Add(5*time.Minute))
	require.True(t, hasFlag(m5, reading.DerivedMissing), m5.FlagNames)
	f.good("kwh", t0.Add(11*time.Minute), "11000")
	f.advance(t0.Add(time.Hour + 12*time.Minute))
	rev := find(t, f.out, "el", reading.WindowMinute, t0.Add(5*time.Minute))
	require.Equal(t, uint32(1), rev.Revision)
	requireRel(t, 0.5, val(t, rev, "co2"))
	h := find(t, f.out, "el", reading.WindowHour, t0)
	require.Zero(t, h.Revision, "the hour closed after the late reading")
	requireRel(t, 5.5, val(t, h, "co2"))
	require.Equal(t, Stats{}, c.Stats())
}

func TestCEMSOutageAlarm(t *testing.T) {
	cc := cemsCase{cb: "dry", fb: "dry", conc: "20.0", concU: "%vol", flow: "500000", flowU: "Nm3/h"}
	c := cemsCalc(t, cc, config.Emission{Name: "stack"})
	f := &feeder{c: c}
	feedCEMS(f, cc, t0, nil)
	f.advance(t0.Add(time.Hour))
	rateMinutes(f, "flow", t0.Add(time.Hour), 6*24*60, constant("500000"))
	f.advance(t0.Add(5*24*time.Hour + 30*time.Minute))
	require.False(t, hasFlag(find(t, f.out, "stack", reading.WindowHour, t0.Add(5*24*time.Hour-time.Hour)), reading.DerivedOutage5Days))
	f.advance(t0.Add(5*24*time.Hour + 3*time.Hour))
	h := find(t, f.out, "stack", reading.WindowHour, t0.Add(5*24*time.Hour+time.Hour))
	require.True(t, hasFlag(h, reading.DerivedOutage5Days|reading.DerivedMissing|reading.DerivedSubstitutionRequired), h.FlagNames)
	alarm := false
	for _, w := range c.Live() {
		alarm = alarm || w.Alarm
	}
	require.True(t, alarm)
}

func TestLive(t *testing.T) {
	c := kilnCalc(t, "UTC")
	f := &feeder{c: c}
	for i := range 200 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		f.good("clinker", at, "120")
		f.good("kwh", at, ftoa(float64(i*20)))
		f.good("run", at, "1")
		f.good("co2", at, "20")
		f.good("flow", at, "500000")
		f.advance(at)
	}
	kinds := map[string]Window{}
	for _, w := range c.Live() {
		kinds[w.Stream+"/"+w.Kind] = w
	}
	require.Contains(t, kinds, "proc/hour")
	require.Contains(t, kinds, "proc/rolling-60m")
	requireRel(t, 120*0.525/60*33, kinds["proc/rolling-60m"].Values["emission"]) // 33 closed minutes
	requireRel(t, 0.5703*0.12/120*60, kinds["power/rolling-60m"].Values["intensity"])
	before, err := c.Snapshot()
	require.NoError(t, err)
	c.Live()
	after, err := c.Snapshot()
	require.NoError(t, err)
	require.Equal(t, string(before), string(after), "Live has no side effects")
}
