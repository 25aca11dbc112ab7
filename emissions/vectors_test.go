package emissions

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// The test vectors of mrv-methods.md §6. Expected values are recomputed from the listed
// inputs and compared with a relative tolerance of 1e-9.

func TestTV1NaturalGas(t *testing.T) {
	for _, tc := range []struct {
		name, unit, tempC string
		rollover, maxRate string
		start, end        string
		want              float64
		missing           bool
		flag              reading.DerivedFlag
	}{
		{"a", "Nm3", "0", "1000000.0", "1.0", "0", "1000.0", 1000 * 0.0360 / 1000 * 56.1, false, 0},
		{"b", "Sm3", "15", "1000000.0", "1.0", "0", "1000.0", 1000 * 273.15 / 288.15 * 0.0360 / 1000 * 56.1, false, 0},
		{"c rollover", "Nm3", "0", "1000000.0", "1.0", "999600.0", "600.0", 1000 * 0.0360 / 1000 * 56.1, false, 0},
		{"d reset", "Nm3", "0", "1000000.0", "0.2", "999600.0", "600.0", 0, true, reading.DerivedCounterReset},
		{"jump", "Nm3", "0", "1000000.0", "0.2", "0", "1000.0", 0, true, reading.DerivedCounterJump},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "UTC", []tagDef{{id: "gas", unit: tc.unit, kind: "counter", rollover: tc.rollover, maxRate: tc.maxRate}}, time.Second,
				[]config.Factor{fac(t, "ncv", "0.0360", "GJ/Nm3"), fac(t, "ef", "56.1", "t CO2/TJ"), fac(t, "of", "1", "1")},
				config.Emission{Name: "ng", Method: "fuel", Inputs: map[string]string{"fuel": "s.gas"},
					Factors:   map[string]string{"ncv": "ncv", "ef": "ef", "of": "of"},
					Reference: &config.Reference{TemperatureDegC: dec(t, tc.tempC), PressureKPa: dec(t, "101.325")}})
			c, err := New(cfg)
			require.NoError(t, err)
			f := &feeder{c: c}
			f.good("gas", t0, tc.start)
			f.good("gas", t0.Add(time.Hour), tc.end)
			f.advance(t0.Add(time.Hour + time.Second))
			h := find(t, f.out, "ng", reading.WindowHour, t0)
			if tc.missing {
				require.Empty(t, h.Values)
				require.True(t, hasFlag(h, reading.DerivedMissing|tc.flag), h.FlagNames)
				return
			}
			requireRel(t, tc.want, val(t, h, "co2"))
			require.Equal(t, "1", h.Coverage.String())
			require.Equal(t, []reading.FactorRef{{ID: "ef", Version: "1"}, {ID: "ncv", Version: "1"}, {ID: "of", Version: "1"}}, h.Factors)
			require.Equal(t, []reading.DerivedInput{{Origin: "p/g/s", LogID: testLog[:], First: 0, Last: 1, Tags: []string{"s.gas"}}}, h.Inputs)
		})
	}
}

func TestTV2PetCoke(t *testing.T) {
	for _, of := range []string{"", "0.99"} {
		t.Run("of="+of, func(t *testing.T) {
			fs := []config.Factor{fac(t, "ncv", "32.5", "GJ/t"), fac(t, "ef", "97.5", "t CO2/TJ"), fac(t, "of", "0.99", "1")}
			e := config.Emission{Name: "coke", Method: "fuel", Inputs: map[string]string{"fuel": "s.coke"}, Factors: map[string]string{"ncv": "ncv", "ef": "ef"}}
			want := 10 * 32.5 / 1000 * 97.5
			if of != "" {
				e.Factors["of"] = "of"
				want *= 0.99
			}
			c, err := New(testConfig(t, "UTC", []tagDef{{id: "coke", unit: "t", kind: "counter"}}, time.Second, fs, e))
			require.NoError(t, err)
			f := &feeder{c: c}
			f.good("coke", t0, "100.000")
			f.good("coke", t0.Add(time.Hour), "110.000")
			f.advance(t0.Add(time.Hour + time.Second))
			requireRel(t, want, val(t, find(t, f.out, "coke", reading.WindowHour, t0), "co2"))
		})
	}
}

// rateHours feeds a rate tag once a minute from start for n minutes.
func rateMinutes(f *feeder, tag string, start time.Time, n int, v func(i int) (string, reading.Severity)) {
	for i := range n {
		s, sev := v(i)
		f.obs(tag, start.Add(time.Duration(i)*time.Minute), s, sev)
	}
}

func constant(s string) func(int) (string, reading.Severity) {
	return func(int) (string, reading.Severity) { return s, reading.Good }
}

func TestTV3Clinker(t *testing.T) {
	cases := map[string]struct {
		factors map[string]string
		ef      float64
	}{
		"a default": {map[string]string{"ef_clinker": "efc"}, 0.525},
		"b composition": {map[string]string{"cao": "cao", "cao_nc": "caonc", "mgo": "mgo", "mgo_nc": "mgonc", "sf_cao": "sfcao", "sf_mgo": "sfmgo"},
			0.785*(0.650-0.005) + 1.092*(0.015-0)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fs := []config.Factor{fac(t, "efc", "0.525", "t CO2/t"), fac(t, "cao", "0.650", "1"), fac(t, "caonc", "0.005", "1"),
				fac(t, "mgo", "0.015", "1"), fac(t, "mgonc", "0", "1"), fac(t, "sfcao", "0.785", "t CO2/t"), fac(t, "sfmgo", "1.092", "t CO2/t")}
			fs[0].Default = true
			c, err := New(testConfig(t, "UTC", []tagDef{{id: "clinker", unit: "t/h"}}, time.Minute, fs,
				config.Emission{Name: "proc", Method: "clinker-b", Inputs: map[string]string{"clinker": "s.clinker"}, Factors: tc.factors}))
			require.NoError(t, err)
			f := &feeder{c: c}
			rateMinutes(f, "clinker", t0, 24*60, constant("125")) // 3 000 t/day
			f.advance(t0.Add(24 * time.Hour))
			day := find(t, f.out, "proc", reading.WindowDay, t0)
			requireRel(t, 3000*tc.ef, val(t, day, "co2"))
			requireRel(t, 3000, val(t, day, "clinker"))
			require.Equal(t, &reading.DerivedHours{Expected: 24, Valid: 24}, day.Hours)
			requireRel(t, 125*tc.ef, val(t, find(t, f.out, "proc", reading.WindowHour, t0.Add(5*time.Hour)), "co2"))
			require.Equal(t, name == "a default", hasFlag(day, reading.DerivedDefaultFactor))
		})
	}
}

func TestTV4KilnDust(t *testing.T) {
	efCKD := (0.525 / 1.525 * 0.5) / (1 - 0.525/1.525*0.5)
	for name, tc := range map[string]struct {
		factors map[string]string
		want    float64
	}{
		"calcination": {map[string]string{"ef_clinker": "efc", "calcination": "d"}, 30 * efCKD},
		"fixed":       {map[string]string{"ef_ckd": "efc"}, 30 * 0.525},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := New(testConfig(t, "UTC", []tagDef{{id: "dust", unit: "t", kind: "counter"}}, time.Second,
				[]config.Factor{fac(t, "efc", "0.525", "t CO2/t"), fac(t, "d", "0.5", "1")},
				config.Emission{Name: "ckd", Method: "kiln-dust", Inputs: map[string]string{"dust": "s.dust"}, Factors: tc.factors}))
			require.NoError(t, err)
			f := &feeder{c: c}
			f.good("dust", t0, "0")
			f.good("dust", t0.Add(time.Hour), "30")
			f.advance(t0.Add(time.Hour + time.Second))
			requireRel(t, tc.want, val(t, find(t, f.out, "ckd", reading.WindowHour, t0), "co2"))
		})
	}
	requireRel(t, 21.0/101, efCKD)
}

func TestTV5Anode(t *testing.T) {
	c2co2 := fac(t, "c2co2", "44", "t CO2/t C")
	c2co2.Divisor = dec(t, "12")
	c, err := New(testConfig(t, "UTC", []tagDef{{id: "metal", unit: "t", kind: "counter"}}, time.Second,
		[]config.Factor{fac(t, "nac", "0.40", "t C/t"), fac(t, "s", "2.0", "%wt"), fac(t, "ash", "0.4", "%wt"), c2co2},
		config.Emission{Name: "anode", Method: "anode-co2", Inputs: map[string]string{"production": "s.metal"},
			Factors: map[string]string{"nac": "nac", "sulphur": "s", "ash": "ash", "c_to_co2": "c2co2"}}))
	require.NoError(t, err)
	f := &feeder{c: c}
	f.good("metal", t0, "0")
	f.good("metal", t0.Add(time.Hour), "1000")
	f.advance(t0.Add(time.Hour + time.Second))
	h := find(t, f.out, "anode", reading.WindowHour, t0)
	requireRel(t, 1000*0.40*0.976*44/12, val(t, h, "co2"))
	requireRel(t, 0.40*0.976*44/12, val(t, h, "intensity"))
}

var gwps = map[string][2]string{"AR4": {"7390", "12200"}, "AR5": {"6630", "11100"}, "AR6": {"7380", "12400"}, "SAR": {"6500", "9200"}}

func pfcFactors(t *testing.T, set string) []config.Factor {
	g := gwps[set]
	fs := []config.Factor{fac(t, "sef", "0.143", "(kg CF4/t)/(AE-min/cell-day)"), fac(t, "f", "0.121", "kg C2F6/kg CF4"),
		fac(t, "ovc", "1.16", "(kg CF4/t)/mV"), fac(t, "ce", "95.0", "%"), fac(t, "far", "0.3355727", "kg/(kA h)"),
		fac(t, "gcf4", g[0], "t CO2e/t"), fac(t, "gc2f6", g[1], "t CO2e/t")}
	fs[5].GWPSet, fs[6].GWPSet = set, set
	return fs
}

func TestTV6PFCSlope(t *testing.T) {
	for set, g := range gwps {
		t.Run(set, func(t *testing.T) {
			c, err := New(testConfig(t, "UTC", []tagDef{{id: "ae", unit: "min", kind: "counter"}, {id: "cells", unit: "1"}, {id: "metal", unit: "t", kind: "counter"}},
				time.Minute, pfcFactors(t, set),
				config.Emission{Name: "pfc", Method: "pfc-slope", GWPSet: set,
					Inputs:  map[string]string{"ae_minutes": "s.ae", "cells": "s.cells", "production": "s.metal"},
					Factors: map[string]string{"sef_cf4": "sef", "f_c2f6": "f", "gwp_cf4": "gcf4", "gwp_c2f6": "gc2f6"}}))
			require.NoError(t, err)
			f := &feeder{c: c}
			f.good("ae", t0, "0")
			f.good("metal", t0, "0")
			rateMinutes(f, "cells", t0, 24*60, constant("300"))
			f.good("ae", t0.Add(24*time.Hour), "30.0")
			f.good("metal", t0.Add(24*time.Hour), "1000")
			f.advance(t0.Add(24*time.Hour + time.Second))
			day := find(t, f.out, "pfc", reading.WindowDay, t0)
			aem := 30.0 / (300 * 1)
			requireRel(t, 0.100, aem)
			cf4 := 0.143 * aem * 1000
			c2f6 := cf4 * 0.121
			requireRel(t, cf4, val(t, day, "cf4"))
			requireRel(t, c2f6, val(t, day, "c2f6"))
			gc, gc2 := atof(g[0]), atof(g[1])
			requireRel(t, (cf4*gc+c2f6*gc2)/1000, val(t, day, "co2e"))
		})
	}
	// The published figures, as a check of the recomputation.
	requirePrinted(t, 126.78666, (14.3*7390+1.7303*12200)/1000)
}

func atof(s string) float64 {
	var f float64
	_, _ = fmt.Sscan(s, &f)
	return f
}

func TestTV7PFCOvervoltage(t *testing.T) {
	for _, set := range []string{"AR4", "AR5", "AR6"} {
		t.Run(set, func(t *testing.T) {
			c, err := New(testConfig(t, "UTC", []tagDef{{id: "aeo", unit: "mV"}, {id: "metal", unit: "t", kind: "counter"}}, time.Minute, pfcFactors(t, set),
				config.Emission{Name: "pfc", Method: "pfc-overvoltage", GWPSet: set,
					Inputs:  map[string]string{"aeo": "s.aeo", "production": "s.metal"},
					Factors: map[string]string{"ovc": "ovc", "ce_percent": "ce", "f_c2f6": "f", "gwp_cf4": "gcf4", "gwp_c2f6": "gc2f6"}}))
			require.NoError(t, err)
			f := &feeder{c: c}
			f.good("metal", t0, "0")
			rateMinutes(f, "aeo", t0, 60, constant("2.0"))
			f.good("metal", t0.Add(time.Hour), "1000")
			f.advance(t0.Add(time.Hour + time.Second))
			h := find(t, f.out, "pfc", reading.WindowHour, t0)
			cf4kg := 1.16 * (2.0 / 95.0) * 1000 * 0.001 * 1000
			requirePrinted(t, 24.421053, cf4kg)
			requireRel(t, cf4kg, val(t, h, "cf4"))
			g := gwps[set]
			requireRel(t, (cf4kg*atof(g[0])+cf4kg*0.121*atof(g[1]))/1000, val(t, h, "co2e"))
		})
	}
	t.Run("CE as a fraction is refused", func(t *testing.T) {
		fs := pfcFactors(t, "AR5")
		fs[3].Value = dec(t, "0.95")
		_, err := New(testConfig(t, "UTC", []tagDef{{id: "aeo", unit: "mV"}, {id: "metal", unit: "t", kind: "counter"}}, time.Minute, fs,
			config.Emission{Name: "pfc", Method: "pfc-overvoltage", GWPSet: "AR5", Inputs: map[string]string{"aeo": "s.aeo", "production": "s.metal"},
				Factors: map[string]string{"ovc": "ovc", "ce_percent": "ce", "f_c2f6": "f", "gwp_cf4": "gcf4", "gwp_c2f6": "gc2f6"}}))
		require.ErrorContains(t, err, "not a percentage")
	})
}

func TestTV8Electricity(t *testing.T) {
	for _, ef := range []string{"0.5703", "0.5306"} {
		t.Run(ef, func(t *testing.T) {
			c, err := New(testConfig(t, "UTC", []tagDef{{id: "kwh", unit: "kWh", kind: "counter"}, {id: "ia", unit: "kA"}, {id: "cells", unit: "1"}}, time.Minute,
				[]config.Factor{fac(t, "grid", ef, "t CO2/MWh"), fac(t, "ce", "95.0", "%"), fac(t, "far", "0.3355727", "kg/(kA h)")},
				config.Emission{Name: "el", Method: "electricity",
					Inputs:  map[string]string{"energy": "s.kwh", "line_current": "s.ia", "cells": "s.cells"},
					Factors: map[string]string{"ef_grid": "grid", "ce_percent": "ce", "faraday": "far"}}))
			require.NoError(t, err)
			f := &feeder{c: c}
			f.good("kwh", t0, "1000000")
			rateMinutes(f, "ia", t0, 61, constant("400"))
			rateMinutes(f, "cells", t0, 61, constant("300"))
			f.good("kwh", t0.Add(time.Hour), "1560000")
			f.advance(t0.Add(time.Hour + time.Second))
			h := find(t, f.out, "el", reading.WindowHour, t0)
			co2 := 560.000 * atof(ef)
			mp := 300 * 400 * 1 * (95.0 / 100) * 0.3355727 / 1000
			requirePrinted(t, 38.2552878, mp)
			requireRel(t, co2, val(t, h, "co2"))
			requireRel(t, 560, val(t, h, "energy"))
			requireRel(t, mp, val(t, h, "production"))
			requireRel(t, co2/mp, val(t, h, "intensity"))
			require.True(t, hasFlag(h, reading.DerivedEstimated))
		})
	}
}

type cemsCase struct {
	cb, fb        string
	conc, concU   string
	flow, flowU   string
	h2o, temp, pr string
}

func cemsCalc(t *testing.T, cc cemsCase, e config.Emission) *Calculator {
	tags := []tagDef{{id: "co2", unit: cc.concU}, {id: "flow", unit: cc.flowU}, {id: "h2o", unit: "%vol"}, {id: "temp", unit: "degC"}, {id: "p", unit: "kPa"}, {id: "clinker", unit: "t/h"}}
	e.Method, e.ConcentrationBasis, e.FlowBasis = "cems", cc.cb, cc.fb
	in := map[string]string{"concentration": "s.co2", "flow": "s.flow"}
	if cc.h2o != "" {
		in["h2o"] = "s.h2o"
	}
	if cc.temp != "" {
		in["temperature"], in["pressure"] = "s.temp", "s.p"
	}
	for k, v := range e.Inputs {
		in[k] = v
	}
	e.Inputs = in
	c, err := New(testConfig(t, "UTC", tags, time.Minute, nil, e))
	require.NoError(t, err)
	return c
}

func feedCEMS(f *feeder, cc cemsCase, start time.Time, conc func(int) (string, reading.Severity)) {
	if conc == nil {
		conc = constant(cc.conc)
	}
	rateMinutes(f, "co2", start, 60, conc)
	rateMinutes(f, "flow", start, 60, constant(cc.flow))
	if cc.h2o != "" {
		rateMinutes(f, "h2o", start, 60, constant(cc.h2o))
	}
	if cc.temp != "" {
		rateMinutes(f, "temp", start, 60, constant(cc.temp))
		rateMinutes(f, "p", start, 60, constant(cc.pr))
	}
}

const pctCO2 = 44.0095 / 22.41397 * 1000 / 100 // g/Nm3 per %vol (§1.3)

func TestTV9CEMSValidHour(t *testing.T) {
	cc := cemsCase{cb: "dry", fb: "dry", conc: "20.0", concU: "%vol", flow: "500000", flowU: "Nm3/h"}
	c := cemsCalc(t, cc, config.Emission{Name: "stack"})
	f := &feeder{c: c}
	feedCEMS(f, cc, t0, nil)
	f.good("co2", t0.Add(time.Hour), "20.0")
	f.good("flow", t0.Add(time.Hour), "500000")
	f.advance(t0.Add(time.Hour))
	h := find(t, f.out, "stack", reading.WindowHour, t0)
	requirePrinted(t, 196.348527, 20*pctCO2*500000/1e6)
	requireRel(t, 20*pctCO2*500000/1e6, val(t, h, "co2"))
	require.Equal(t, "1", h.Coverage.String())
	require.Zero(t, h.Flags, h.FlagNames)
}

func TestTV10CEMSBasis(t *testing.T) {
	qnWet := 800000 * 273.15 / 423.15 * 98.0 / 101.325
	want := 18.0 * pctCO2 * qnWet / 1e6
	requirePrinted(t, 499466.437, qnWet)
	for name, cc := range map[string]cemsCase{
		"wet conc, wet actual flow":           {cb: "wet", fb: "wet", conc: "18.0", concU: "%vol", flow: "800000", flowU: "m3/h", temp: "150", pr: "98.0"},
		"dry conc, wet actual flow, with h2o": {cb: "dry", fb: "wet", conc: "20.0", concU: "%vol", flow: "800000", flowU: "m3/h", temp: "150", pr: "98.0", h2o: "10.0"},
		"wet conc, dry normal flow, with h2o": {cb: "wet", fb: "dry", conc: "18.0", concU: "%vol", flow: fmt.Sprint(qnWet * 0.9), flowU: "Nm3/h", h2o: "10.0"},
	} {
		t.Run(name, func(t *testing.T) {
			c := cemsCalc(t, cc, config.Emission{Name: "stack"})
			f := &feeder{c: c}
			feedCEMS(f, cc, t0, nil)
			f.advance(t0.Add(time.Hour))
			requireRel(t, want, val(t, find(t, f.out, "stack", reading.WindowHour, t0), "co2"))
		})
	}
	t.Run("wet conc with dry flow and no h2o is refused", func(t *testing.T) {
		_, err := New(testConfig(t, "UTC", []tagDef{{id: "co2", unit: "%vol"}, {id: "flow", unit: "Nm3/h"}}, time.Minute, nil,
			config.Emission{Name: "stack", Method: "cems", ConcentrationBasis: "wet", FlowBasis: "dry", Inputs: map[string]string{"concentration": "s.co2", "flow": "s.flow"}}))
		require.ErrorContains(t, err, "basis-mismatch")
	})
}

// tv11Conc returns the minute concentrations of TV11: valid minutes first, the rest
// BadSensorFailure.
func tv11Conc(valid int, value func(i int) string) func(int) (string, reading.Severity) {
	return func(i int) (string, reading.Severity) {
		if i < valid {
			return value(i), reading.Good
		}
		return "", reading.Bad
	}
}

func TestTV11HourValidity(t *testing.T) {
	dry := cemsCase{cb: "dry", fb: "dry", concU: "%vol", flow: "500000", flowU: "Nm3/h"}
	at := func(pct float64) float64 { return pct * pctCO2 * 500000 / 1e6 }
	mrr := config.Emission{Name: "stack", Substitution: config.Substitution{Method: config.SubstitutionMRREq4}}
	for name, tc := range map[string]struct {
		valid    int
		value    func(int) string
		minValid string
		subst    bool
		want     float64 // 0: no value
		flags    reading.DerivedFlag
	}{
		"a 50/60 pro rata": {50, func(i int) string { return map[bool]string{true: "20.0", false: "21.0"}[i%2 == 0] }, "0.8", true, at(20.5), reading.DerivedPartial},
		"b 45/60 MRR substitutes": {45, func(int) string { return "20.0" }, "0.8", true, at(19.5 + 2*0.8),
			reading.DerivedSubstituted | reading.DerivedProvisional},
		"b 45/60 two-thirds regime valid": {45, func(int) string { return "20.0" }, "0.6666667", false, at(20.0), reading.DerivedPartial},
		"c 30/60 MRR substitutes":         {30, func(int) string { return "20.0" }, "0.8", true, at(21.1), reading.DerivedSubstituted},
		"c 30/60 DAHS regime no value":    {30, func(int) string { return "20.0" }, "0.6666667", false, 0, reading.DerivedMissing},
	} {
		t.Run(name, func(t *testing.T) {
			e := mrr
			e.MinValidFraction = dec(t, tc.minValid)
			if tc.subst {
				e.Substitution.Mean, e.Substitution.Sigma = dec(t, "19.5"), dec(t, "0.8")
			} else {
				e.Substitution = config.Substitution{Method: config.SubstitutionNone}
			}
			c := cemsCalc(t, dry, e)
			f := &feeder{c: c}
			feedCEMS(f, dry, t0, tv11Conc(tc.valid, tc.value))
			f.advance(t0.Add(time.Hour))
			h := find(t, f.out, "stack", reading.WindowHour, t0)
			require.True(t, hasFlag(h, tc.flags), h.FlagNames)
			if tc.want == 0 {
				require.Empty(t, h.Values)
				return
			}
			requireRel(t, tc.want, val(t, h, "co2"))
			if hasFlag(h, reading.DerivedSubstituted) {
				require.Equal(t, "MRR_EQ4", h.Substitution)
				require.Equal(t, uint64(1), h.Counts.Substituted)
			}
		})
	}
	requirePrinted(t, 201.257240, at(20.5))
	requirePrinted(t, 207.147696, at(21.1))
}

func TestTV12Day(t *testing.T) {
	dry := cemsCase{cb: "dry", fb: "dry", conc: "20.0", concU: "%vol", flow: "500000", flowU: "Nm3/h"}
	at := func(pct float64) float64 { return pct * pctCO2 * 500000 / 1e6 }
	for name, subst := range map[string]bool{"MRR substitution": true, "strict": false} {
		t.Run(name, func(t *testing.T) {
			e := config.Emission{Name: "stack", Inputs: map[string]string{"production": "s.clinker"}}
			if subst {
				e.Substitution = config.Substitution{Method: config.SubstitutionMRREq4, Mean: dec(t, "19.5"), Sigma: dec(t, "0.8")}
			}
			c := cemsCalc(t, dry, e)
			f := &feeder{c: c}
			for h := range 24 {
				var conc func(int) (string, reading.Severity)
				if h == 5 {
					conc = tv11Conc(45, func(int) string { return "20.0" })
				}
				feedCEMS(f, dry, t0.Add(time.Duration(h)*time.Hour), conc)
				rateMinutes(f, "clinker", t0.Add(time.Duration(h)*time.Hour), 60, constant("208.3333"))
				f.advance(t0.Add(time.Duration(h+1) * time.Hour))
			}
			day := find(t, f.out, "stack", reading.WindowDay, t0)
			if subst {
				total := 23*at(20) + at(21.1)
				requirePrinted(t, 4723.163824, total)
				requireRel(t, total, val(t, day, "co2"))
				requireRel(t, total/(24*208.3333), val(t, day, "intensity"))
				require.Equal(t, &reading.DerivedHours{Expected: 24, Valid: 23, Substituted: 1}, day.Hours)
				require.True(t, hasFlag(day, reading.DerivedSubstituted|reading.DerivedProvisional))
				require.Equal(t, "MRR_EQ4", day.Substitution)
				return
			}
			total := 23 * at(20)
			requireRel(t, total, val(t, day, "co2"))
			requireRel(t, total/(23*208.3333), val(t, day, "intensity"))
			requireRel(t, 23*208.3333, val(t, day, "production_matched"))
			requireRel(t, 24*208.3333, val(t, day, "production"))
			require.Equal(t, &reading.DerivedHours{Expected: 24, Valid: 23, Missing: 1}, day.Hours)
			require.True(t, hasFlag(day, reading.DerivedPartial))
			require.NotEqual(t, total*24/23, val(t, day, "co2"), "never scaled by coverage")
		})
	}
}
