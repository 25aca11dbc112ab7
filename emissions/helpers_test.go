package emissions

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

func dec(t testing.TB, s string) *config.Decimal {
	t.Helper()
	v, err := reading.ParseValue(s)
	require.NoError(t, err)
	return &config.Decimal{Value: v}
}

// fac is a factor record, valid since 2000.
func fac(t testing.TB, id, value, unit string) config.Factor {
	return config.Factor{ID: id, Version: "1", Value: dec(t, value), Unit: unit, Source: "test", ValidFrom: "2000-01-01"}
}

// tagDef is "<id>:<unit>:<kind>" for the test source "s".
type tagDef struct {
	id, unit, kind string
	rollover       string
	maxRate        string
}

func testConfig(t testing.TB, tz string, tags []tagDef, interval time.Duration, factors []config.Factor, ems ...config.Emission) *config.Config {
	t.Helper()
	src := config.Source{Name: "s", Kind: "modbus", Interval: config.Duration(interval)}
	for _, d := range tags {
		tag := config.Tag{ID: d.id, Unit: d.unit, Kind: d.kind}
		if tag.Kind == "" {
			tag.Kind = "rate"
		}
		if d.kind == "counter" {
			r, m := d.rollover, d.maxRate
			if r == "" {
				r = "1e15"
			}
			if m == "" {
				m = "1e12"
			}
			tag.Rollover, tag.MaxRate = dec(t, r), dec(t, m)
		}
		src.Tags = append(src.Tags, tag)
	}
	for i := range ems {
		if ems[i].MaxHold == 0 {
			ems[i].MaxHold = config.Duration(2 * interval)
		}
		if ems[i].MinValidFraction == nil {
			ems[i].MinValidFraction = dec(t, "0.8")
		}
		if ems[i].Substitution.Method == "" {
			ems[i].Substitution.Method = config.SubstitutionNone
		}
	}
	return &config.Config{Gateway: config.Gateway{Site: "p", ID: "g", Timezone: tz}, Sources: []config.Source{src}, Factors: factors, Emissions: ems}
}

// feeder observes readings with consecutive seqs.
type feeder struct {
	c   *Calculator
	seq uint64
	out []Result
}

var testLog = [16]byte{0xab}

func (f *feeder) obs(tag string, at time.Time, v string, sev reading.Severity) {
	r := reading.Reading{Tag: "s." + tag, Time: at.UnixNano(), Quality: reading.Quality{Severity: sev}}
	if v != "" {
		val, err := reading.ParseValue(v)
		if err != nil {
			panic(err)
		}
		r.Value, r.HasValue = val, true
	}
	f.c.Observe("p/g/s", testLog, f.seq, r)
	f.seq++
}

func (f *feeder) good(tag string, at time.Time, v string) { f.obs(tag, at, v, reading.Good) }

func (f *feeder) advance(at time.Time) []Result {
	rs := f.c.Advance(at)
	f.out = append(f.out, rs...)
	return rs
}

// find returns the latest revision of the result of stream's window kind starting at start.
func find(t testing.TB, rs []Result, stream, kind string, start time.Time) *reading.DerivedBody {
	t.Helper()
	var got *reading.DerivedBody
	for _, r := range rs {
		b := r.Body()
		if r.Stream == stream && b.Window == kind && b.Start == start.UnixNano() && (got == nil || b.Revision >= got.Revision) {
			got = b
		}
	}
	require.NotNil(t, got, "no %s %s result at %s", stream, kind, start)
	return got
}

func val(t testing.TB, b *reading.DerivedBody, name string) float64 {
	t.Helper()
	v, ok := b.Value(name)
	require.True(t, ok, "no value %q in %+v", name, b.Values)
	return v.Float64()
}

func requireRel(t testing.TB, want, got float64, msg ...any) {
	t.Helper()
	if want == 0 {
		require.InDelta(t, 0, got, 1e-12, msg...)
		return
	}
	require.LessOrEqual(t, math.Abs(got-want)/math.Abs(want), 1e-9, append([]any{"want %.12g got %.12g", want, got}, msg...)...)
}

func hasFlag(b *reading.DerivedBody, f reading.DerivedFlag) bool {
	return reading.DerivedFlag(b.Flags)&f != 0
}

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// requirePrinted checks a figure as §6 prints it, rounded for display (to about 8
// significant digits): it pins the recomputation, not the engine.
func requirePrinted(t testing.TB, printed, got float64) {
	t.Helper()
	require.LessOrEqual(t, math.Abs(got-printed)/math.Abs(printed), 1e-7, "printed %v, recomputed %.12g", printed, got)
}
