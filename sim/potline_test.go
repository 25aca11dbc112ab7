package sim

import (
	"errors"
	"testing"
	"time"

	gb "github.com/goburrow/modbus"
	"github.com/stretchr/testify/require"
)

func startTestPotLine(t *testing.T, opts PotLineOptions) (*PotLine, *gb.TCPClientHandler, gb.Client) {
	t.Helper()
	pl, err := StartPotLine("127.0.0.1:0", opts)
	require.NoError(t, err)
	h := gb.NewTCPClientHandler(pl.Addr())
	h.Timeout = 2 * time.Second
	h.SlaveId = 1
	t.Cleanup(func() {
		_ = h.Close()
		require.NoError(t, pl.Close())
	})
	return pl, h, gb.NewClient(h)
}

func TestPotLineServesItsPoints(t *testing.T) {
	verifyNoLeaks(t)
	clock := newClock(kilnEpoch)
	pl, _, c := startTestPotLine(t, PotLineOptions{Now: clock.Now})
	require.Len(t, PotLinePoints(), 1+Pots+5+Pots)
	for _, at := range []time.Duration{0, 50 * time.Second, 2 * time.Hour} {
		clock.Set(kilnEpoch.Add(at))
		regs, err := c.ReadHoldingRegisters(0, potLineRegisters)
		require.NoError(t, err)
		coils, err := c.ReadCoils(0, Pots)
		require.NoError(t, err)
		for _, p := range PotLinePoints() {
			want, ok := pl.ValueAt(p.ID, clock.Now())
			require.True(t, ok, p.ID)
			switch p.Type {
			case "bool":
				bit := int64(coils[p.Address/8] >> (p.Address % 8) & 1)
				require.Equal(t, want.String(), itoa(bit), p.ID)
			case "float32":
				require.Positive(t, want.Mantissa, p.ID)
			case "uint32":
				r := pl.registers(clock.Now())
				require.Equal(t, regs[2*p.Address:2*p.Address+4], append(u16(r[p.Address]), u16(r[p.Address+1])...), p.ID)
			default:
				require.Equal(t, regs[2*p.Address:2*p.Address+2], u16(pl.registers(clock.Now())[p.Address]), p.ID)
			}
		}
	}
	_, err := c.ReadHoldingRegisters(40, potLineRegisters-40+1)
	var mbErr *gb.ModbusError
	require.ErrorAs(t, err, &mbErr)
	require.Equal(t, byte(2), mbErr.ExceptionCode)
}

func itoa(n int64) string { return map[int64]string{0: "0", 1: "1"}[n] }
func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func TestPotLineAnodeEffect(t *testing.T) {
	clock := newClock(kilnEpoch)
	pl, err := StartPotLine("127.0.0.1:0", PotLineOptions{Now: clock.Now})
	require.NoError(t, err)
	defer pl.Close()
	at := func(d time.Duration) potState { return pl.state(kilnEpoch.Add(d)) }
	// Pot 1's first anode effect starts 45 s after start-up and lasts 15 s.
	require.False(t, at(44 * time.Second).ae[0])
	s := at(50 * time.Second)
	require.True(t, s.ae[0])
	require.Equal(t, 30.0, s.voltages[0])
	require.Less(t, s.voltages[1], 5.0)
	require.Equal(t, 1, s.aeCount)
	require.Zero(t, s.aeLast, "none finished yet")
	s = at(61 * time.Second)
	require.False(t, s.ae[0])
	require.Equal(t, 15.0, s.aeLast)
	v, ok := pl.ValueAt("pot01_ae", kilnEpoch.Add(50*time.Second))
	require.True(t, ok)
	require.Equal(t, "1", v.String())
	// After a day every pot has had many; the count only grows.
	require.Greater(t, at(24*time.Hour).aeCount, at(12*time.Hour).aeCount)
}

func TestPotLineEnergyWraps(t *testing.T) {
	clock := newClock(kilnEpoch)
	pl, err := StartPotLine("127.0.0.1:0", PotLineOptions{Now: clock.Now, Energy: 655_000})
	require.NoError(t, err)
	defer pl.Close()
	e0, ok := pl.ValueAt("energy", kilnEpoch)
	require.True(t, ok)
	require.Equal(t, "655000", e0.String())
	// About 25 MW: 420 kWh a minute, so the 16-bit counter of 10 kWh units wraps.
	e1, ok := pl.ValueAt("energy", kilnEpoch.Add(time.Minute))
	require.True(t, ok)
	require.Negative(t, e1.Cmp(e0), "wrapped: %s after %s", e1, e0)
	require.Positive(t, e1.Mantissa)
}

func TestPotLineFaults(t *testing.T) {
	verifyNoLeaks(t)
	pl, h, c := startTestPotLine(t, PotLineOptions{UnitID: 5})
	h.SlaveId = 5
	pl.SetFault(Fault{Kind: FaultException, Code: 4, Count: 1})
	_, err := c.ReadHoldingRegisters(0, 2)
	var mbErr *gb.ModbusError
	require.ErrorAs(t, err, &mbErr)
	require.Equal(t, byte(4), mbErr.ExceptionCode)
	_, err = c.ReadHoldingRegisters(0, 2)
	require.NoError(t, err, "count 1: cleared")

	pl.SetFault(Fault{Kind: FaultSlow, Delay: 300 * time.Millisecond, Count: 1})
	h.Timeout = 50 * time.Millisecond
	_, err = c.ReadHoldingRegisters(0, 2)
	var ne interface{ Timeout() bool }
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "%v", err)
	_ = h.Close()

	h.SlaveId = 6
	h.Timeout = 2 * time.Second
	_, err = c.ReadHoldingRegisters(0, 2)
	require.ErrorAs(t, err, &mbErr)
	require.Equal(t, byte(11), mbErr.ExceptionCode, "another unit id")
	require.Equal(t, uint64(4), pl.Requests(3))
}

// TestPotLineAnodeEffectMinutes checks the cumulative AE-minutes counter against the
// schedule: pot 1's first effect (45 s after start-up, 15 s long) is the first to count.
func TestPotLineAnodeEffectMinutes(t *testing.T) {
	clock := newClock(kilnEpoch)
	pl, err := StartPotLine("127.0.0.1:0", PotLineOptions{Now: clock.Now})
	require.NoError(t, err)
	defer pl.Close()
	at := func(d time.Duration) string {
		v, ok := pl.ValueAt("ae_minutes", kilnEpoch.Add(d))
		require.True(t, ok)
		return v.String()
	}
	require.Equal(t, "0", at(40*time.Second))
	require.Equal(t, "0.08", at(50*time.Second), "5 s of pot 1's effect: 0.083 min, floored to 0.08")
	require.Equal(t, "0.25", at(60*time.Second), "pot 1's whole 15 s effect")
	prev := 0.0
	for d := time.Duration(0); d < 3*time.Hour; d += 7 * time.Minute {
		v, _ := pl.ValueAt("ae_minutes", kilnEpoch.Add(d))
		require.GreaterOrEqual(t, v.Float64(), prev, "the counter never decreases")
		prev = v.Float64()
	}
	cells, _ := pl.ValueAt("cells", kilnEpoch)
	require.Equal(t, "20", cells.String())
}
