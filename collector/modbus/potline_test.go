package modbus_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/collector/modbus"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
)

func pointsConfig(t testing.TB, name, url string, points []sim.Point) config.Source {
	src := config.Source{Name: name, Kind: "modbus", Timeout: config.Duration(time.Second), Modbus: &config.ModbusIO{URL: url}}
	for _, p := range points {
		src.Tags = append(src.Tags, config.Tag{
			ID: p.ID, Unit: p.Unit, Kind: p.Kind, Width: p.Width, MaxRate: dec(t, p.MaxRate),
			UnitID: 1, Register: p.Register, Address: p.Address, Type: p.Type, Order: p.Order, Scale: dec(t, p.Scale),
		})
	}
	return src
}

// TestPotLinePlanAndValues reads the whole pot line (48 holding registers, 20 coils) in the
// two planned requests per poll, counted by the server, across an anode effect and an
// energy counter wrap.
func TestPotLinePlanAndValues(t *testing.T) {
	c := &clock{}
	c.Set(t0)
	pl, err := sim.StartPotLine("127.0.0.1:0", sim.PotLineOptions{Now: c.Now, Energy: 655_000})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pl.Close()) })
	src := newSource(t, pointsConfig(t, "potline1", pl.URL(), sim.PotLinePoints()), c)
	plan := src.Plan()
	require.Len(t, plan, 2)
	require.Equal(t, modbus.Request{UnitID: 1, Function: modbus.FuncReadCoils, Address: 0, Quantity: sim.Pots}, withoutTags(plan[0]))
	require.Equal(t, modbus.Request{UnitID: 1, Function: modbus.FuncReadHoldingRegisters, Address: 0, Quantity: 48}, withoutTags(plan[1]))

	points := sim.PotLinePoints()
	var sawAE bool
	var energy []reading.Value
	for i, at := range []time.Duration{0, 50 * time.Second, 61 * time.Second, 2 * time.Minute} {
		c.Set(t0.Add(at))
		rs, err := readWithin(t, src, time.Second)
		require.NoError(t, err)
		for j, p := range points {
			want, ok := pl.ValueAt(p.ID, c.Now())
			require.True(t, ok)
			require.Equal(t, want, rs[j].Value, "%s at %s", p.ID, at)
			require.Equal(t, reading.Good, rs[j].Quality.Severity)
			if p.ID == "pot01_ae" && rs[j].Value.Mantissa == 1 {
				sawAE = true
			}
			if p.ID == "energy" {
				energy = append(energy, rs[j].Value)
			}
		}
		require.Equal(t, uint64(i+1), pl.Requests(1))
		require.Equal(t, uint64(i+1), pl.Requests(3))
	}
	require.True(t, sawAE)
	require.Negative(t, energy[3].Cmp(energy[0]), "the raw counter wrapped; the collector reports it as read")
}

func withoutTags(r modbus.Request) modbus.Request { r.Tags = nil; return r }
