package sim

import (
	"encoding/binary"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	gb "github.com/goburrow/modbus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/reading"
)

// fixedClock is a clock the test moves by hand.
type fixedClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fixedClock {
	c := &fixedClock{}
	c.Set(t)
	return c
}
func (c *fixedClock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fixedClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

var kilnEpoch = time.Date(2025, 3, 1, 6, 0, 0, 0, time.UTC)

// verifyNoLeaks checks, after every cleanup of t, that t left no goroutines behind. (Per test
// rather than in TestMain, so other files of package sim stay free to add their own TestMain.)
func verifyNoLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func startTestKiln(t *testing.T, opts KilnOptions) (*Kiln, *gb.TCPClientHandler, gb.Client) {
	t.Helper()
	k, err := StartKiln("127.0.0.1:0", opts)
	require.NoError(t, err)
	h := gb.NewTCPClientHandler(k.Addr())
	h.Timeout = 2 * time.Second
	h.SlaveId = 1
	t.Cleanup(func() {
		_ = h.Close()
		require.NoError(t, k.Close())
	})
	return k, h, gb.NewClient(h)
}

func TestKilnServesItsPoints(t *testing.T) {
	verifyNoLeaks(t)
	clock := newClock(kilnEpoch)
	k, _, c := startTestKiln(t, KilnOptions{Now: clock.Now})
	b, err := c.ReadHoldingRegisters(0, kilnRegisters)
	require.NoError(t, err)
	require.Len(t, b, 2*kilnRegisters)
	for _, p := range KilnPoints() {
		bits := binary.BigEndian.Uint32(b[2*p.Address:])
		var got reading.Value
		switch p.Type {
		case "float32":
			var ok bool
			got, ok = reading.FromFloat32(math.Float32frombits(bits))
			require.True(t, ok)
		case "uint32":
			got = reading.FromInt64(int64(bits))
			if p.Scale != "" {
				s, err := reading.ParseValue(p.Scale)
				require.NoError(t, err)
				got, _ = got.Mul(s)
			}
		default:
			t.Fatalf("unexpected type %s", p.Type)
		}
		want, ok := k.ValueAt(p.ID, clock.Now())
		require.True(t, ok, p.ID)
		require.Equal(t, want, got, p.ID)
	}
	// At start-up the counters hold their initial values.
	v, _ := k.ValueAt("fuel_gas_total", kilnEpoch)
	require.Equal(t, "12345678.9", v.String())
	v, _ = k.ValueAt("energy", kilnEpoch)
	require.Equal(t, "4567890", v.String())
	for _, r := range b[24:40] {
		require.Zero(t, r, "spare registers read as zero")
	}

	in, err := c.ReadInputRegisters(0, kilnRegisters)
	require.NoError(t, err)
	require.Equal(t, b, in, "input registers mirror holding registers")
	coils, err := c.ReadCoils(0, 1)
	require.NoError(t, err)
	require.Equal(t, []byte{1}, coils)
	di, err := c.ReadDiscreteInputs(0, 1)
	require.NoError(t, err)
	require.Equal(t, []byte{1}, di)

	_, err = c.ReadHoldingRegisters(20, 10)
	requireException(t, err, gb.ExceptionCodeIllegalDataAddress)
	require.Equal(t, uint64(2), k.Requests(3))
	require.Equal(t, uint64(1), k.Requests(4))
	require.Equal(t, uint64(1), k.Requests(1))
	require.Equal(t, uint64(1), k.Requests(2))
}

func requireException(t *testing.T, err error, code byte) {
	t.Helper()
	var me *gb.ModbusError
	require.True(t, errors.As(err, &me), "want exception %d, got %v", code, err)
	require.Equal(t, code, me.ExceptionCode)
}

func f(k *Kiln, id string, at time.Time) float64 {
	v, ok := k.ValueAt(id, at)
	if !ok {
		panic(id)
	}
	return v.Float64()
}

func TestKilnValuesArePlausible(t *testing.T) {
	k := &Kiln{device: device{now: time.Now, t0: unixSeconds(kilnEpoch)}, c0: [2]float64{1000, 2000}}
	ranges := map[string][2]float64{
		"clinker":       {115, 135},
		"kiln_feed":     {180, 220},
		"stack_co2":     {20, 25},
		"flue_gas_flow": {250000, 300000},
		"fuel_gas_flow": {8400, 9600},
		"power":         {8600, 9400},
	}
	prev := map[string]float64{}
	var fuelSum, powerSum float64
	const step = 5 * time.Second
	const hours = 6
	for at := kilnEpoch; at.Before(kilnEpoch.Add(hours * time.Hour)); at = at.Add(step) {
		for id, r := range ranges {
			v := f(k, id, at)
			require.GreaterOrEqual(t, v, r[0], "%s at %s", id, at)
			require.LessOrEqual(t, v, r[1], "%s at %s", id, at)
		}
		ratio := f(k, "kiln_feed", at) / f(k, "clinker", at)
		require.InDelta(t, 1.6, ratio, 0.02)
		for _, id := range []string{"fuel_gas_total", "energy"} {
			v := f(k, id, at)
			require.GreaterOrEqual(t, v, prev[id], "%s never decreases", id)
			prev[id] = v
		}
		// Trapezoid integration of the rates, to compare with the counters.
		next := at.Add(step)
		fuelSum += (f(k, "fuel_gas_flow", at) + f(k, "fuel_gas_flow", next)) / 2 * step.Hours()
		powerSum += (f(k, "power", at) + f(k, "power", next)) / 2 * step.Hours()
	}
	end := kilnEpoch.Add(hours * time.Hour)
	require.InDelta(t, fuelSum, f(k, "fuel_gas_total", end)-1000, 1, "the totaliser integrates the flow")
	require.InDelta(t, powerSum, f(k, "energy", end)-2000, 2, "the energy counter integrates the power")
	// Values move: smooth but not constant.
	require.NotEqual(t, f(k, "clinker", kilnEpoch), f(k, "clinker", kilnEpoch.Add(time.Second)))
	require.InDelta(t, f(k, "clinker", kilnEpoch), f(k, "clinker", kilnEpoch.Add(time.Second)), 0.5)
}

func TestKilnFaults(t *testing.T) {
	verifyNoLeaks(t)
	k, h, c := startTestKiln(t, KilnOptions{Now: newClock(kilnEpoch).Now})

	k.SetFault(Fault{Kind: FaultException})
	_, err := c.ReadHoldingRegisters(0, 2)
	requireException(t, err, gb.ExceptionCodeServerDeviceFailure)
	_, err = c.ReadHoldingRegisters(0, 2)
	requireException(t, err, gb.ExceptionCodeServerDeviceFailure) // until cleared

	k.SetFault(Fault{Kind: FaultException, Code: 2, Count: 1})
	_, err = c.ReadHoldingRegisters(0, 2)
	requireException(t, err, gb.ExceptionCodeIllegalDataAddress)
	_, err = c.ReadHoldingRegisters(0, 2)
	require.NoError(t, err, "a counted fault clears itself")

	k.SetFault(Fault{Kind: FaultBusy, Count: 2})
	_, err = c.ReadInputRegisters(0, 2)
	requireException(t, err, gb.ExceptionCodeServerDeviceBusy)
	_, err = c.ReadInputRegisters(0, 2)
	requireException(t, err, gb.ExceptionCodeServerDeviceBusy)
	_, err = c.ReadInputRegisters(0, 2)
	require.NoError(t, err)

	k.SetFault(Fault{Kind: FaultSlow, Delay: 300 * time.Millisecond, Count: 1})
	h.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err = c.ReadHoldingRegisters(0, 2)
	require.Error(t, err)
	require.Less(t, time.Since(start), 300*time.Millisecond)
	require.NoError(t, h.Close()) // goburrow stays one reply behind otherwise (LIBRARIES.md §2)
	h.Timeout = 2 * time.Second
	_, err = c.ReadHoldingRegisters(0, 2)
	require.NoError(t, err)

	require.Equal(t, uint64(6), k.Requests(3))
	require.Equal(t, uint64(3), k.Requests(4))
}

func TestKilnUnitIDFilter(t *testing.T) {
	verifyNoLeaks(t)
	_, h, c := startTestKiln(t, KilnOptions{UnitID: 3})
	h.SlaveId = 3
	_, err := c.ReadHoldingRegisters(0, 2)
	require.NoError(t, err)
	h.SlaveId = 4
	_, err = c.ReadHoldingRegisters(0, 2)
	requireException(t, err, gb.ExceptionCodeGatewayTargetDeviceFailedToRespond)
}

func TestKilnCloseReleasesSlowReplies(t *testing.T) {
	verifyNoLeaks(t)
	k, err := StartKiln("127.0.0.1:0", KilnOptions{})
	require.NoError(t, err)
	k.SetFault(Fault{Kind: FaultSlow, Delay: time.Hour})
	h := gb.NewTCPClientHandler(k.Addr())
	h.Timeout = 100 * time.Millisecond
	_, err = gb.NewClient(h).ReadHoldingRegisters(0, 2)
	require.Error(t, err)
	require.NoError(t, h.Close())
	require.NoError(t, k.Close())
}
