package modbus_test

import (
	"context"
	"encoding/binary"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/collector"
	"github.com/mrv-agent/mrv-agent/collector/modbus"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ collector.Source = (*modbus.Source)(nil)

// clock is a settable clock shared by the kiln and the source, so expected values are known.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

var t0 = time.Date(2025, 3, 1, 6, 0, 0, 0, time.UTC)

func dec(t testing.TB, s string) *config.Decimal {
	t.Helper()
	if s == "" {
		return nil
	}
	v, err := reading.ParseValue(s)
	require.NoError(t, err)
	return &config.Decimal{Value: v}
}

// kilnConfig builds the source config the demo would build from sim.KilnPoints.
func kilnConfig(t testing.TB, url string) config.Source {
	src := config.Source{
		Name: "kiln1", Kind: "modbus", Timeout: config.Duration(time.Second),
		Modbus: &config.ModbusIO{URL: url},
	}
	for _, p := range sim.KilnPoints() {
		src.Tags = append(src.Tags, config.Tag{
			ID: p.ID, Unit: p.Unit, Kind: p.Kind, Width: p.Width, MaxRate: dec(t, p.MaxRate),
			UnitID: 1, Register: p.Register, Address: p.Address, Type: p.Type, Order: p.Order, Scale: dec(t, p.Scale),
		})
	}
	return src
}

type fixture struct {
	kiln  *sim.Kiln
	clock *clock
	src   *modbus.Source
}

func newFixture(t *testing.T, kopts sim.KilnOptions, mut func(*config.Source), opts modbus.Options) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{}}
	f.clock.Set(t0)
	kopts.Now = f.clock.Now
	k, err := sim.StartKiln("127.0.0.1:0", kopts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	f.kiln = k
	cfg := kilnConfig(t, k.URL())
	if mut != nil {
		mut(&cfg)
	}
	opts.Now = f.clock.Now
	f.src, err = modbus.NewWithOptions(cfg, nil, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.src.Close()) })
	return f
}

func (f *fixture) read(t *testing.T, timeout time.Duration) ([]reading.Reading, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return f.src.Read(ctx)
}

// requireKilnValues checks every reading against the kiln's values at the clock's time.
func (f *fixture) requireKilnValues(t *testing.T, rs []reading.Reading) {
	t.Helper()
	points := sim.KilnPoints()
	require.Len(t, rs, len(points))
	for i, p := range points {
		r := rs[i]
		require.Equal(t, "kiln1."+p.ID, r.Tag)
		require.Equal(t, reading.Unit(p.Unit), r.Unit)
		require.True(t, r.HasValue, r.Tag)
		require.Equal(t, reading.Quality{}, r.Quality, r.Tag)
		want, ok := f.kiln.ValueAt(p.ID, f.clock.Now())
		require.True(t, ok)
		require.Equal(t, want, r.Value, r.Tag)
		require.Equal(t, f.clock.Now().UnixNano(), r.Time)
		require.Equal(t, reading.TimeGateway, r.TimeSource)
		require.Len(t, r.Raw, 4, r.Tag)
	}
}

func TestReadKiln(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, nil, modbus.Options{})
	plan := f.src.Plan()
	require.Equal(t, []modbus.Request{{
		UnitID: 1, Function: modbus.FuncReadHoldingRegisters, Address: 0, Quantity: 24,
		Tags: []string{"fuel_gas_flow", "fuel_gas_total", "kiln_feed", "clinker", "stack_co2", "flue_gas_flow", "power", "energy"},
	}}, plan, "one request: the spare registers 12-19 are bridged")

	for i := range 3 {
		f.clock.Set(t0.Add(time.Duration(i) * 1500 * time.Millisecond))
		rs, err := f.read(t, time.Second)
		require.NoError(t, err)
		f.requireKilnValues(t, rs)
	}
	require.Equal(t, uint64(3*len(plan)), f.kiln.Requests(3), "requests per poll as planned")

	// Raw is the wire bytes: the float32 re-derives to the value.
	f.clock.Set(t0)
	rs, err := f.read(t, time.Second)
	require.NoError(t, err)
	v, ok := reading.FromFloat32(math.Float32frombits(binary.BigEndian.Uint32(rs[3].Raw)))
	require.True(t, ok)
	require.Equal(t, rs[3].Value, v)
	require.Equal(t, "12345678.9", rs[1].Value.String(), "counter × 0.1 at start-up")
}

func TestReadMixedFunctionsCountsMatchPlan(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, func(c *config.Source) {
		c.Tags = append(c.Tags,
			config.Tag{ID: "clinker_in", Unit: "t/h", Kind: "rate", UnitID: 1, Register: "input", Address: 6, Type: "float32"},
			config.Tag{ID: "flue_in_cdab_raw", Unit: "1", Kind: "state", UnitID: 1, Register: "input", Address: 10, Type: "uint32", Order: "CDAB"},
			config.Tag{ID: "running", Unit: "1", Kind: "state", UnitID: 1, Register: "coil", Address: 0},
			config.Tag{ID: "running_di", Unit: "1", Kind: "state", UnitID: 1, Register: "discrete", Address: 0},
		)
	}, modbus.Options{})
	plan := f.src.Plan()
	perFn := map[uint8]uint64{}
	for _, r := range plan {
		perFn[r.Function]++
	}
	require.Equal(t, map[uint8]uint64{1: 1, 2: 1, 3: 1, 4: 1}, perFn)
	for range 2 {
		rs, err := f.read(t, time.Second)
		require.NoError(t, err)
		require.Len(t, rs, 12)
		require.Equal(t, rs[3].Value, rs[8].Value, "input registers mirror holding")
		require.Equal(t, "1", rs[10].Value.String())
		require.Equal(t, []byte{1}, rs[10].Raw)
		require.Equal(t, "1", rs[11].Value.String())
		// CDAB of the flue gas float's bits: the words come swapped.
		hold := binary.BigEndian.Uint32(rs[5].Raw)
		require.Equal(t, reading.FromInt64(int64(hold<<16|hold>>16)), rs[9].Value)
	}
	for fn := uint8(1); fn <= 4; fn++ {
		require.Equal(t, 2*perFn[fn], f.kiln.Requests(fn), "function %d", fn)
	}
}

func TestExceptionIsBadNeverZero(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, func(c *config.Source) {
		c.Tags = append(c.Tags, config.Tag{ID: "clinker_in", Unit: "t/h", Kind: "rate", UnitID: 1, Register: "input", Address: 6, Type: "float32"})
	}, modbus.Options{})
	for _, code := range []uint8{4, 2, 11} {
		f.kiln.SetFault(sim.Fault{Kind: sim.FaultException, Code: code, Count: 1}) // the holding request only
		rs, err := f.read(t, time.Second)
		require.NoError(t, err, "an exception is data, not a failed poll")
		for _, r := range rs[:8] {
			require.False(t, r.HasValue, r.Tag)
			require.Equal(t, reading.Value{}, r.Value)
			require.Nil(t, r.Raw)
			require.Equal(t, reading.Quality{Severity: reading.Bad, Flags: reading.FlagException | reading.FlagCommsLoss, Status: uint32(code)}, r.Quality, r.Tag)
		}
		require.True(t, rs[8].HasValue, "the next request of the poll still ran")
		require.Equal(t, reading.Good, rs[8].Quality.Severity)
	}
	// And the device answers normally afterwards, on the same connection.
	rs, err := f.read(t, time.Second)
	require.NoError(t, err)
	f.requireKilnValues(t, rs[:8])
}

func TestBusyIsRetried(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, nil, modbus.Options{BusyDelay: time.Millisecond})
	f.kiln.SetFault(sim.Fault{Kind: sim.FaultBusy, Count: 2})
	rs, err := f.read(t, time.Second)
	require.NoError(t, err)
	f.requireKilnValues(t, rs)
	require.Equal(t, uint64(3), f.kiln.Requests(3), "two busy answers, then the data")

	f.kiln.SetFault(sim.Fault{Kind: sim.FaultBusy, Count: 3})
	rs, err = f.read(t, time.Second)
	require.NoError(t, err)
	require.Equal(t, uint64(6), f.kiln.Requests(3), "retries are bounded")
	for _, r := range rs {
		require.False(t, r.HasValue)
		require.Equal(t, uint32(6), r.Quality.Status)
		require.Equal(t, reading.FlagException|reading.FlagCommsLoss, r.Quality.Flags)
	}
}

func TestSlowReplyTimesOutAndNextPollIsInSync(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, func(c *config.Source) {
		c.Timeout = config.Duration(100 * time.Millisecond)
	}, modbus.Options{})
	f.kiln.SetFault(sim.Fault{Kind: sim.FaultSlow, Delay: 400 * time.Millisecond, Count: 1})
	start := time.Now()
	rs, err := f.read(t, time.Second)
	require.Error(t, err)
	require.Less(t, time.Since(start), 390*time.Millisecond, "the source timeout bounds the request")
	require.Contains(t, err.Error(), "read holding registers 0+24 from unit 1")
	for _, r := range rs {
		require.False(t, r.HasValue)
		require.Equal(t, reading.Bad, r.Quality.Severity)
		require.Equal(t, reading.FlagCommsLoss|reading.FlagTimeout, r.Quality.Flags)
	}
	// The late reply must not be taken as the answer to the next request.
	for i := range 3 {
		f.clock.Set(t0.Add(time.Duration(i+1) * time.Second))
		rs, err = f.read(t, time.Second)
		require.NoError(t, err, "poll %d after the timeout", i+1)
		f.requireKilnValues(t, rs)
	}
}

func TestContextDeadlineBoundsRead(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, nil, modbus.Options{}) // source timeout 1 s
	f.kiln.SetFault(sim.Fault{Kind: sim.FaultSlow, Delay: 2 * time.Second, Count: 1})
	start := time.Now()
	rs, err := f.read(t, 80*time.Millisecond)
	require.Error(t, err)
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.Equal(t, reading.FlagCommsLoss|reading.FlagTimeout, rs[0].Quality.Flags)

	// An expired context makes no request at all.
	ctx, cancel := context.WithTimeout(t.Context(), -time.Second)
	defer cancel()
	before := f.kiln.Requests(3)
	rs, err = f.src.Read(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Len(t, rs, 8)
	require.Equal(t, before, f.kiln.Requests(3))

	rs, err = f.read(t, time.Second)
	require.NoError(t, err)
	f.requireKilnValues(t, rs)
}

func TestRelayDropAllOneFailedPollThenRecovery(t *testing.T) {
	f := &fixture{clock: &clock{}}
	f.clock.Set(t0)
	k, err := sim.StartKiln("127.0.0.1:0", sim.KilnOptions{Now: f.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	relay, err := sim.NewRelay(k.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, relay.Close()) })
	f.kiln = k
	f.src, err = modbus.NewWithOptions(kilnConfig(t, "tcp://"+relay.Addr()), nil, modbus.Options{Now: f.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.src.Close()) })

	rs, err := f.read(t, time.Second)
	require.NoError(t, err)
	f.requireKilnValues(t, rs)

	relay.DropAll()
	rs, err = f.read(t, time.Second)
	require.Error(t, err, "the reset connection fails one poll")
	for _, r := range rs {
		require.False(t, r.HasValue)
		require.NotZero(t, r.Quality.Flags&reading.FlagCommsLoss)
	}
	for range 3 {
		rs, err = f.read(t, time.Second)
		require.NoError(t, err, "the next poll re-dials")
		f.requireKilnValues(t, rs)
	}
}

func TestUnitIDsAreSetPerRequest(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{UnitID: 1}, func(c *config.Source) {
		c.Tags = append(c.Tags, config.Tag{ID: "other", Unit: "t/h", Kind: "rate", UnitID: 2, Register: "holding", Address: 6, Type: "float32"})
	}, modbus.Options{})
	require.Len(t, f.src.Plan(), 2)
	for range 2 {
		rs, err := f.read(t, time.Second)
		require.NoError(t, err)
		f.requireKilnValues(t, rs[:8])
		require.Equal(t, uint32(11), rs[8].Quality.Status, "unit 2 is not behind this gateway")
	}
}

func TestRangeCheckKeepsValue(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, func(c *config.Source) {
		c.Tags[3].Max = dec(t, "100") // clinker runs at ~125 t/h
		c.Tags[3].Min = dec(t, "0")
		c.Tags[4].Min = dec(t, "0") // stack CO2 is in range
		c.Tags[4].Max = dec(t, "40")
	}, modbus.Options{})
	rs, err := f.read(t, time.Second)
	require.NoError(t, err)
	require.True(t, rs[3].HasValue)
	require.Equal(t, reading.Quality{Severity: reading.Bad, Flags: reading.FlagOutOfRange}, rs[3].Quality)
	require.Equal(t, reading.Quality{}, rs[4].Quality)
}

func TestCloseThenReadRedials(t *testing.T) {
	f := newFixture(t, sim.KilnOptions{}, nil, modbus.Options{})
	_, err := f.read(t, time.Second)
	require.NoError(t, err)
	require.NoError(t, f.src.Close())
	rs, err := f.read(t, time.Second)
	require.NoError(t, err)
	f.requireKilnValues(t, rs)
}

func TestPollerWithKilnRecoversAfterOutage(t *testing.T) {
	f := &fixture{clock: &clock{}}
	f.clock.Set(t0)
	k, err := sim.StartKiln("127.0.0.1:0", sim.KilnOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	relay, err := sim.NewRelay(k.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, relay.Close()) })
	cfg := kilnConfig(t, "tcp://"+relay.Addr())
	src, err := modbus.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, src.Close()) })

	p := collector.NewPoller(src, 50*time.Millisecond, 40*time.Millisecond, nil)
	out := make(chan collector.Batch, 100)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	wait := func(ok bool) collector.Batch {
		for {
			select {
			case b := <-out:
				if (b.Err == nil) == ok {
					return b
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no batch with ok=%v", ok)
			}
		}
	}
	wait(true)
	relay.Pause()
	wait(false)
	require.False(t, p.Health().Up)
	relay.Resume()
	b := wait(true)
	require.Len(t, b.Readings, 8)
	require.Eventually(t, func() bool { return p.Health().Up }, 2*time.Second, 5*time.Millisecond)
}

func BenchmarkReadKiln(b *testing.B) {
	k, err := sim.StartKiln("127.0.0.1:0", sim.KilnOptions{})
	require.NoError(b, err)
	defer k.Close()
	src, err := modbus.New(kilnConfig(b, k.URL()), nil)
	require.NoError(b, err)
	defer src.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := src.Read(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSeparateSourcesDoNotStall: a slow device on one connection does not delay another.
func TestSeparateSourcesDoNotStall(t *testing.T) {
	slow := newFixture(t, sim.KilnOptions{}, nil, modbus.Options{})
	fast := newFixture(t, sim.KilnOptions{}, nil, modbus.Options{})
	slow.kiln.SetFault(sim.Fault{Kind: sim.FaultSlow, Delay: 800 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := slow.read(t, 700*time.Millisecond)
		done <- err
	}()
	begin := time.Now()
	for range 5 {
		rs, err := fast.read(t, time.Second)
		require.NoError(t, err)
		fast.requireKilnValues(t, rs)
	}
	require.Less(t, time.Since(begin), 500*time.Millisecond)
	require.Error(t, <-done, "the slow one timed out meanwhile")
	slow.kiln.SetFault(sim.Fault{})
}

// TestBitOfRegister reads bools from bits of a holding register (the energy counter's low
// word), in the same request as the other tags.
func TestBitOfRegister(t *testing.T) {
	bit := func(n int) *int { return &n }
	f := newFixture(t, sim.KilnOptions{}, func(c *config.Source) {
		c.Tags = append(c.Tags,
			config.Tag{ID: "e_bit0", Unit: "1", Kind: "state", UnitID: 1, Register: "holding", Address: 23, Type: "bool", Bit: bit(0)},
			config.Tag{ID: "e_bit9", Unit: "1", Kind: "state", UnitID: 1, Register: "holding", Address: 23, Type: "bool", Bit: bit(9)},
		)
	}, modbus.Options{})
	require.Len(t, f.src.Plan(), 1)
	for i := range 4 {
		f.clock.Set(t0.Add(time.Duration(i) * 7 * time.Second))
		rs, err := f.read(t, time.Second)
		require.NoError(t, err)
		w := binary.BigEndian.Uint16(rs[7].Raw[2:])
		require.Equal(t, rs[7].Raw[2:], rs[8].Raw, "raw is the whole register")
		require.Equal(t, reading.FromInt64(int64(w&1)), rs[8].Value)
		require.Equal(t, reading.FromInt64(int64(w>>9&1)), rs[9].Value)
	}
	_, err := modbus.New(func() config.Source {
		c := kilnConfig(t, f.kiln.URL())
		c.Tags[0].Type = "bool"
		return c
	}(), nil)
	require.ErrorContains(t, err, "bit: a bool on register \"holding\" needs bit")
}
