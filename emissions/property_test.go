package emissions

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// kilnCalc binds an additive rate method (clinker), an additive counter method
// (electricity) and a CEMS to one source polled every 10 s.
func kilnCalc(t testing.TB, tz string) *Calculator {
	c, err := New(testConfig(t, tz,
		[]tagDef{{id: "clinker", unit: "t/h"}, {id: "kwh", unit: "kWh", kind: "counter", rollover: "65536", maxRate: "50"},
			{id: "co2", unit: "%vol"}, {id: "flow", unit: "Nm3/h"}, {id: "run", unit: "1"}},
		10*time.Second,
		[]config.Factor{fac(t, "efc", "0.525", "t CO2/t"), fac(t, "grid", "0.5703", "t CO2/MWh")},
		config.Emission{Name: "proc", Method: "clinker-b", Inputs: map[string]string{"clinker": "s.clinker", "operating": "s.run"},
			Factors: map[string]string{"ef_clinker": "efc"}, Shifts: []string{"06:00", "14:00", "22:00"}},
		config.Emission{Name: "power", Method: "electricity", Inputs: map[string]string{"energy": "s.kwh", "production": "s.clinker"},
			Factors: map[string]string{"ef_grid": "grid"}},
		config.Emission{Name: "stack", Method: "cems", ConcentrationBasis: "dry", FlowBasis: "dry",
			Inputs: map[string]string{"concentration": "s.co2", "flow": "s.flow"}}))
	require.NoError(t, err)
	return c
}

// randomRun feeds n polls of random data (bad readings, counter resets and wraps,
// pauses, shutdowns) and advances after each.
func randomRun(c *Calculator, rng *rand.Rand, start time.Time, n int, check func([]Result)) {
	f := &feeder{c: c}
	at := start
	kwh := 1000.0
	for range n {
		at = at.Add(time.Duration(5+rng.IntN(20)) * time.Second)
		sev := func() reading.Severity {
			if rng.IntN(20) == 0 {
				return reading.Severity(1 + rng.IntN(2))
			}
			return reading.Good
		}
		switch rng.IntN(30) {
		case 0:
			kwh = float64(rng.IntN(100)) // a reset
		case 1:
			at = at.Add(time.Duration(rng.IntN(3600)) * time.Second) // silence
		}
		kwh = math.Mod(kwh+float64(rng.IntN(300)), 65536)
		f.obs("clinker", at, ftoa(rng.Float64()*250), sev())
		f.obs("kwh", at, ftoa(math.Floor(kwh)), sev())
		f.obs("co2", at, ftoa(15+rng.Float64()*10), sev())
		f.obs("flow", at, ftoa(4e5+rng.Float64()*2e5), sev())
		f.obs("run", at, []string{"1", "1", "1", "0"}[rng.IntN(4)], sev())
		check(c.Advance(at.Add(-time.Duration(rng.IntN(5)) * time.Second)))
	}
	check(c.Advance(at.Add(3 * time.Hour)))
}

func ftoa(f float64) string {
	v, _ := reading.FromFloat64(f)
	return v.String()
}

// checkInvariants: no NaN or Inf reaches a record, every record encodes and decodes
// strictly, cumulative totals never decrease, and for the additive methods the minutes
// of a complete hour sum to the hour.
func checkInvariants(t *testing.T, c *Calculator) func([]Result) {
	totals := map[string]float64{}
	minutes := map[string]map[int64]map[int64]float64{} // stream -> hour start -> minute start -> latest value
	return func(rs []Result) {
		if len(rs) > 0 {
			recs := make([]reading.Record, len(rs))
			for i, r := range rs {
				recs[i] = r.Record
			}
			enc, err := reading.EncodeBlock(&reading.Block{V: reading.BlockVersion, Origin: "p/g/x", Records: recs})
			require.NoError(t, err)
			_, err = reading.DecodeBlock(enc)
			require.NoError(t, err)
		}
		for _, r := range rs {
			b := r.Body()
			for _, v := range b.Values {
				f := v.Value.Float64()
				require.False(t, math.IsNaN(f) || math.IsInf(f, 0), "%s %s %s", r.Stream, b.Window, v.Name)
			}
			if r.Stream == "stack" {
				continue // the CEMS hour is a product of hourly means (§3.1), not a sum
			}
			co2, ok := b.Value("co2")
			hs := c.clk.hourStart(b.Start)
			if minutes[r.Stream] == nil {
				minutes[r.Stream] = map[int64]map[int64]float64{}
			}
			switch b.Window {
			case reading.WindowMinute:
				if minutes[r.Stream][hs] == nil {
					minutes[r.Stream][hs] = map[int64]float64{}
				}
				if ok && b.Flags&uint32(reading.DerivedPartial|reading.DerivedMissing) == 0 {
					minutes[r.Stream][hs][b.Start] = co2.Float64()
				} else {
					delete(minutes[r.Stream][hs], b.Start)
				}
			case reading.WindowHour:
				ms := minutes[r.Stream][hs]
				if ok && b.Flags&uint32(reading.DerivedPartial|reading.DerivedMissing) == 0 && len(ms) == 60 {
					var sum float64
					for _, v := range ms {
						sum += v
					}
					require.InDelta(t, co2.Float64(), sum, 1e-9*math.Max(1, math.Abs(sum)), "%s hour %s", r.Stream, b.Label)
				}
			}
		}
		for _, w := range c.Live() {
			if w.Kind == "total" {
				require.GreaterOrEqual(t, w.Values["emission"], totals[w.Stream]-1e-9, w.Stream)
				totals[w.Stream] = w.Values["emission"]
			}
		}
	}
}

func TestPropertiesRandom(t *testing.T) {
	for seed := range uint64(4) {
		c := kilnCalc(t, "Europe/Berlin")
		randomRun(c, rand.New(rand.NewPCG(seed, 7)), time.Date(2026, 3, 28, 20, 0, 0, 0, time.UTC), 3000, checkInvariants(t, c))
	}
}

func FuzzCalculator(f *testing.F) {
	f.Add(uint64(1), uint16(500))
	f.Add(uint64(99), uint16(2000))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16) {
		c := kilnCalc(t, "UTC")
		randomRun(c, rand.New(rand.NewPCG(seed, seed>>1)), t0, int(n%3000), checkInvariants(t, c))
	})
}

// TestAdditiveMinutesSumToHour: with every minute valid, the minutes of an hour add up
// to the hour, for a rate (clinker) and a counter (electricity) method.
func TestAdditiveMinutesSumToHour(t *testing.T) {
	c := kilnCalc(t, "UTC")
	f := &feeder{c: c}
	kwh := 0
	for i := range 361 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		kwh += 10 + i%7
		f.good("clinker", at, ftoa(120+float64(i%13)))
		f.good("kwh", at, ftoa(float64(kwh)))
		f.good("run", at, "1")
	}
	f.advance(t0.Add(time.Hour + 10*time.Second))
	for _, s := range []string{"proc", "power"} {
		var sum float64
		n := 0
		for _, r := range f.out {
			if b := r.Body(); r.Stream == s && b.Window == reading.WindowMinute {
				require.Zero(t, b.Flags, b.FlagNames)
				sum += val(t, b, "co2")
				n++
			}
		}
		require.Equal(t, 60, n)
		requireRel(t, sum, val(t, find(t, f.out, s, reading.WindowHour, t0), "co2"), s)
	}
}

// TestSnapshotRestoreMidHour: stopping mid-hour and restoring from the snapshot gives the
// same hour as an uninterrupted run over the same readings.
func TestSnapshotRestoreMidHour(t *testing.T) {
	type obs struct {
		tag string
		at  time.Time
		v   string
	}
	var feed []obs
	kwh := 0
	for i := range 400 {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		kwh += 25
		feed = append(feed, obs{"clinker", at, ftoa(100 + float64(i%17))}, obs{"kwh", at, ftoa(float64(kwh % 65536))},
			obs{"co2", at, "20.5"}, obs{"flow", at, "480000"}, obs{"run", at, "1"})
	}
	run := func(stopAt int) []Result {
		c := kilnCalc(t, "UTC")
		f := &feeder{c: c}
		for i, o := range feed {
			if i == stopAt {
				snap, err := c.Snapshot()
				require.NoError(t, err)
				c = kilnCalc(t, "UTC") // a new process
				require.NoError(t, c.Restore(snap))
				f.c = c
			}
			f.good(o.tag, o.at, o.v)
			if i%5 == 4 {
				f.advance(o.at)
			}
		}
		f.advance(t0.Add(2 * time.Hour))
		return f.out
	}
	want := run(-1)
	for _, stop := range []int{900, 1203, 1500} {
		got := run(stop)
		for _, s := range []string{"proc", "power", "stack"} {
			require.Equal(t, find(t, want, s, reading.WindowHour, t0), find(t, got, s, reading.WindowHour, t0), "%s stop %d", s, stop)
		}
		require.Equal(t, len(want), len(got))
	}
}

func TestRestoreRefusesGarbage(t *testing.T) {
	c := kilnCalc(t, "UTC")
	require.Error(t, c.Restore([]byte("{")))
	require.Error(t, c.Restore([]byte(`{"Version":99}`)))
	require.Error(t, c.Restore([]byte(`{"Version":1,"Jobs":[{"Name":"proc","Method":"clinker-b","Roles":[{},{}],"Minutes":{"1":{"Aggs":[]}}}]}`)))
	require.NoError(t, c.Restore([]byte(`{"Version":1}`)))
}
