package emissions

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// benchCalc has 20 emission sources: 8 clinker (rate), 6 electricity (counter) and 6
// CEMS (concentration + flow), over 26 tags of one source.
func benchCalc(b *testing.B) (*Calculator, []string) {
	var tags []tagDef
	var ems []config.Emission
	var names []string
	for i := range 20 {
		switch {
		case i < 8:
			id := fmt.Sprintf("clinker%d", i)
			tags = append(tags, tagDef{id: id, unit: "t/h"})
			names = append(names, id)
			ems = append(ems, config.Emission{Name: fmt.Sprintf("e%d", i), Method: "clinker-b", Inputs: map[string]string{"clinker": "s." + id},
				Factors: map[string]string{"ef_clinker": "efc"}, Shifts: []string{"06:00", "14:00", "22:00"}})
		case i < 14:
			id := fmt.Sprintf("kwh%d", i)
			tags = append(tags, tagDef{id: id, unit: "kWh", kind: "counter", rollover: "4294967296", maxRate: "1e6"})
			names = append(names, id)
			ems = append(ems, config.Emission{Name: fmt.Sprintf("e%d", i), Method: "electricity", Inputs: map[string]string{"energy": "s." + id},
				Factors: map[string]string{"ef_grid": "grid"}})
		default:
			co2, flow := fmt.Sprintf("co2%d", i), fmt.Sprintf("flow%d", i)
			tags = append(tags, tagDef{id: co2, unit: "%vol"}, tagDef{id: flow, unit: "Nm3/h"})
			names = append(names, co2, flow)
			ems = append(ems, config.Emission{Name: fmt.Sprintf("e%d", i), Method: "cems", ConcentrationBasis: "dry", FlowBasis: "dry",
				Inputs: map[string]string{"concentration": "s." + co2, "flow": "s." + flow}})
		}
	}
	c, err := New(testConfig(b, "Europe/Berlin", tags, time.Second,
		[]config.Factor{fac(b, "efc", "0.525", "t CO2/t"), fac(b, "grid", "0.5703", "t CO2/MWh")}, ems...))
	require.NoError(b, err)
	return c, names
}

// BenchmarkObserveAdvance: the cost per reading at 10 000 readings/s across 20 emission
// sources, with one Advance per simulated second (a seal tick). One op is one reading.
func BenchmarkObserveAdvance(b *testing.B) {
	c, names := benchCalc(b)
	const perSecond = 10000
	step := time.Second / time.Duration(perSecond)
	vals := make([]reading.Value, 1000)
	for i := range vals {
		vals[i] = reading.NewValue(int64(100000+i*37), -3)
	}
	at := t0
	var counter int64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		tag := names[i%len(names)]
		r := reading.Reading{Tag: "s." + tag, Time: at.UnixNano(), HasValue: true, Value: vals[i%len(vals)]}
		if tag[0] == 'k' {
			counter += 3
			r.Value = reading.FromInt64(counter)
		}
		c.Observe("p/g/s", testLog, uint64(i), r)
		at = at.Add(step)
		if i%perSecond == perSecond-1 {
			c.Advance(at)
		}
	}
}

// BenchmarkSnapshot: encoding the state of those 20 sources mid-hour (once per seal tick).
func BenchmarkSnapshot(b *testing.B) {
	c, names := benchCalc(b)
	at := t0
	for i := range 30 * 60 * len(names) {
		tag := names[i%len(names)]
		c.Observe("p/g/s", testLog, uint64(i), reading.Reading{Tag: "s." + tag, Time: at.UnixNano(), HasValue: true, Value: reading.FromInt64(int64(i))})
		if i%len(names) == 0 {
			at = at.Add(time.Second)
			c.Advance(at)
		}
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Snapshot()
		require.NoError(b, err)
		n = len(s)
	}
	b.ReportMetric(float64(n), "bytes")
}
