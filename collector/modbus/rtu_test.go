package modbus_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/mrv-agent/mrv-agent/collector/modbus"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
)

// rtuBus starts an RTU slave serving units on the master side of a pseudo-terminal pair
// and returns the device path of the terminal side, which a source opens as rtu://PATH.
func rtuBus(t *testing.T, units sim.RTUUnits) string {
	t.Helper()
	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	// pty.Open leaves the master blocking (it calls Fd); a non-blocking duplicate is
	// pollable, so Close interrupts the slave's pending Read.
	fd, err := unix.Dup(int(ptmx.Fd()))
	require.NoError(t, err)
	require.NoError(t, ptmx.Close())
	require.NoError(t, unix.SetNonblock(fd, true))
	master := os.NewFile(uintptr(fd), "ptmx")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sim.ServeRTU(master, units)
	}()
	t.Cleanup(func() {
		require.NoError(t, master.Close())
		<-done
		require.NoError(t, tty.Close()) // kept open so the line never hangs up between opens
	})
	return tty.Name()
}

// startKilnAt starts a kiln on the shared test clock.
func startKilnAt(t *testing.T, c *clock, unit uint8) *sim.Kiln {
	t.Helper()
	k, err := sim.StartKiln("127.0.0.1:0", sim.KilnOptions{Now: c.Now, UnitID: unit})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, k.Close()) })
	return k
}

func newSource(t *testing.T, cfg config.Source, c *clock) *modbus.Source {
	t.Helper()
	src, err := modbus.NewWithOptions(cfg, nil, modbus.Options{Now: c.Now, BusyDelay: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, src.Close()) })
	return src
}

func readWithin(t *testing.T, src *modbus.Source, d time.Duration) ([]reading.Reading, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	return src.Read(ctx)
}

// withUnit sets every tag's unit id and prefixes its id.
func withUnit(tags []config.Tag, unit int, prefix string) []config.Tag {
	out := make([]config.Tag, len(tags))
	for i, tg := range tags {
		tg.UnitID, tg.ID = unit, prefix+tg.ID
		out[i] = tg
	}
	return out
}

// transports runs a test against the kiln over RTU on a pseudo-terminal and over RTU over
// TCP on loopback.
func rtuTransports(t *testing.T, units func(c *clock) sim.RTUUnits) map[string]func(t *testing.T, c *clock) string {
	return map[string]func(t *testing.T, c *clock) string{
		"rtu": func(t *testing.T, c *clock) string { return "rtu://" + rtuBus(t, units(c)) },
		"rtuovertcp": func(t *testing.T, c *clock) string {
			srv, err := sim.StartRTUOverTCP("127.0.0.1:0", units(c))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, srv.Close()) })
			return srv.URL()
		},
	}
}

func TestRTUReadsKilnAndExceptionsArePrompt(t *testing.T) {
	var kiln *sim.Kiln
	units := func(c *clock) sim.RTUUnits {
		kiln = startKilnAt(t, c, 0)
		return sim.RTUUnits{1: kiln.Handler()}
	}
	for name, start := range rtuTransports(t, units) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			c.Set(t0)
			url := start(t, c)
			f := &fixture{clock: c}
			cfg := kilnConfig(t, url)
			cfg.Timeout = config.Duration(2 * time.Second)
			f.src = newSource(t, cfg, c)
			f.kiln = kiln
			require.Equal(t, name, f.src.Transport())
			for i := range 3 {
				c.Set(t0.Add(time.Duration(i) * time.Second))
				rs, err := readWithin(t, f.src, 3*time.Second)
				require.NoError(t, err)
				f.requireKilnValues(t, rs)
			}
			// goburrow's own RTU transporter waits for a full-size reply after an exception
			// and times out (LIBRARIES.md §2); ours frames the 5-byte exception reply.
			for _, code := range []uint8{2, 4, 11} {
				kiln.SetFault(sim.Fault{Kind: sim.FaultException, Code: code, Count: 1})
				start := time.Now()
				rs, err := readWithin(t, f.src, 3*time.Second)
				require.NoError(t, err)
				require.Less(t, time.Since(start), time.Second, "an exception is not a timeout")
				for _, r := range rs {
					require.False(t, r.HasValue)
					require.Equal(t, reading.Quality{Severity: reading.Bad, Flags: reading.FlagException | reading.FlagCommsLoss, Status: uint32(code)}, r.Quality)
				}
			}
			kiln.SetFault(sim.Fault{Kind: sim.FaultBusy, Count: 2})
			rs, err := readWithin(t, f.src, 3*time.Second)
			require.NoError(t, err)
			f.requireKilnValues(t, rs)
		})
	}
}

func TestRTUSlowReplyTimesOutThenRecovers(t *testing.T) {
	var kiln *sim.Kiln
	units := func(c *clock) sim.RTUUnits {
		kiln = startKilnAt(t, c, 0)
		return sim.RTUUnits{1: kiln.Handler()}
	}
	for name, start := range rtuTransports(t, units) {
		t.Run(name, func(t *testing.T) {
			c := &clock{}
			c.Set(t0)
			url := start(t, c)
			cfg := kilnConfig(t, url)
			cfg.Timeout = config.Duration(150 * time.Millisecond)
			f := &fixture{clock: c, kiln: kiln, src: newSource(t, cfg, c)}
			kiln.SetFault(sim.Fault{Kind: sim.FaultSlow, Delay: 400 * time.Millisecond, Count: 1})
			begin := time.Now()
			rs, err := readWithin(t, f.src, time.Second)
			require.Error(t, err)
			require.Less(t, time.Since(begin), 390*time.Millisecond, "the timeout bounds the request")
			for _, r := range rs {
				require.Equal(t, reading.FlagCommsLoss|reading.FlagTimeout, r.Quality.Flags)
			}
			// RTU frames carry no transaction id: the late reply must be dropped (closed
			// connection, flushed input), never taken as the answer to a later request.
			c.Set(t0.Add(time.Hour)) // later values differ from the late reply's
			require.Eventually(t, func() bool {
				rs, err := readWithin(t, f.src, time.Second)
				return err == nil && rs[0].HasValue
			}, 5*time.Second, 20*time.Millisecond)
			for range 3 {
				rs, err := readWithin(t, f.src, time.Second)
				require.NoError(t, err)
				f.requireKilnValues(t, rs)
			}
		})
	}
}

// TestRTUDeadUnitCostsItsTimeout: on one bus, unit 2 never answers. Units 1 and 3 are read
// in every poll, and unit 2 costs one timeout per poll.
func TestRTUDeadUnitCostsItsTimeout(t *testing.T) {
	c := &clock{}
	c.Set(t0)
	k1, k3 := startKilnAt(t, c, 0), startKilnAt(t, c, 0)
	path := rtuBus(t, sim.RTUUnits{1: k1.Handler(), 3: k3.Handler()})
	base := kilnConfig(t, "rtu://"+path)
	cfg := base
	cfg.Timeout = config.Duration(200 * time.Millisecond)
	cfg.Tags = append(append(withUnit(base.Tags, 1, "u1_"), withUnit(base.Tags, 2, "u2_")...), withUnit(base.Tags, 3, "u3_")...)
	src := newSource(t, cfg, c)
	require.Len(t, src.Plan(), 3)
	n := len(base.Tags)
	for range 3 {
		begin := time.Now()
		rs, err := readWithin(t, src, 2*time.Second)
		took := time.Since(begin)
		require.NoError(t, err, "units 1 and 3 answered: the source is up")
		require.GreaterOrEqual(t, took, 200*time.Millisecond)
		require.Less(t, took, 600*time.Millisecond, "one timeout, not the poll's deadline")
		for i, r := range rs {
			if i >= n && i < 2*n {
				require.False(t, r.HasValue, r.Tag)
				require.Equal(t, reading.FlagCommsLoss|reading.FlagTimeout, r.Quality.Flags, r.Tag)
				continue
			}
			require.True(t, r.HasValue, r.Tag)
			require.Equal(t, reading.Good, r.Quality.Severity, r.Tag)
		}
	}
	// With no deadline to spare, the dead unit gets its share, not all of it: unit 3
	// behind it is still read.
	cfg.Timeout = config.Duration(2 * time.Second)
	src2 := newSource(t, cfg, c)
	rs, err := readWithin(t, src2, 900*time.Millisecond)
	require.NoError(t, err)
	require.True(t, rs[2*n].HasValue, "unit 3 got its turn")
}

// TestRTUSharedBusIsSerialised: two sources on one serial port (two unit ids), polled
// concurrently, never interleave frames (the race detector and the CRC would see it).
func TestRTUSharedBusIsSerialised(t *testing.T) {
	c := &clock{}
	c.Set(t0)
	k1, k3 := startKilnAt(t, c, 0), startKilnAt(t, c, 0)
	path := rtuBus(t, sim.RTUUnits{1: k1.Handler(), 3: k3.Handler()})
	var srcs []*modbus.Source
	for _, unit := range []int{1, 3} {
		cfg := kilnConfig(t, "rtu://"+path)
		cfg.Name = "kiln" + string(rune('0'+unit))
		cfg.Tags = withUnit(cfg.Tags, unit, "")
		srcs = append(srcs, newSource(t, cfg, c))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*20)
	for _, src := range srcs {
		wg.Go(func() {
			for range 20 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				rs, err := src.Read(ctx)
				cancel()
				if err == nil && !rs[0].HasValue {
					err = errors.New("no value")
				}
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, uint64(20), k1.Requests(3))
	require.Equal(t, uint64(20), k3.Requests(3))

	// Different line settings on a port that is open are refused, not applied underneath.
	cfg := kilnConfig(t, "rtu://"+path)
	cfg.Modbus.Baud = 9600
	other := newSource(t, cfg, c)
	_, err := readWithin(t, srcs[0], time.Second) // leaves the port open at 19200
	require.NoError(t, err)
	_, err = readWithin(t, other, time.Second)
	require.ErrorContains(t, err, "is open at 19200 8E1 by another source")
}

func TestRTUOverTCPRecoversAfterDrop(t *testing.T) {
	c := &clock{}
	c.Set(t0)
	k := startKilnAt(t, c, 0)
	srv, err := sim.StartRTUOverTCP("127.0.0.1:0", sim.RTUUnits{1: k.Handler()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	relay, err := sim.NewRelay(srv.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, relay.Close()) })
	f := &fixture{clock: c, kiln: k, src: newSource(t, kilnConfig(t, "rtuovertcp://"+relay.Addr()), c)}
	rs, err := readWithin(t, f.src, time.Second)
	require.NoError(t, err)
	f.requireKilnValues(t, rs)
	relay.DropAll()
	_, err = readWithin(t, f.src, time.Second)
	require.Error(t, err)
	for range 2 {
		rs, err = readWithin(t, f.src, time.Second)
		require.NoError(t, err, "the next poll re-dials")
		f.requireKilnValues(t, rs)
	}
}

func TestRTUMissingDevice(t *testing.T) {
	c := &clock{}
	cfg := kilnConfig(t, "rtu:///dev/does-not-exist")
	src := newSource(t, cfg, c)
	rs, err := readWithin(t, src, time.Second)
	require.ErrorContains(t, err, "open /dev/does-not-exist")
	require.Equal(t, reading.Bad, rs[0].Quality.Severity)
}
