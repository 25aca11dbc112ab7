package opcua_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/collector"
	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
)

var _ collector.Source = (*opcua.Source)(nil)

// kilnSource is the config of the kiln's OPC UA nodes at endpoint.
func kilnSource(endpoint, collect string, interval time.Duration) config.Source {
	src := config.Source{
		Name: "kiln1", Kind: "opcua", Interval: config.Duration(interval), Timeout: config.Duration(interval / 2),
		OPCUA: &config.OPCUA{Endpoint: endpoint, Security: "none", Auth: "anonymous", Collect: collect,
			PublishingInterval: config.Duration(interval), QueueSize: 10},
	}
	for _, p := range sim.OPCUAPoints() {
		src.Tags = append(src.Tags, config.Tag{ID: p.ID, Unit: p.Unit, Kind: p.Kind, Node: p.Node, Timestamp: "source"})
	}
	return src
}

type fixture struct {
	srv   *sim.OPCUAServer
	relay *sim.Relay
	src   *opcua.Source
}

func startServer(t *testing.T, tick time.Duration, advertise ...string) *sim.OPCUAServer {
	t.Helper()
	srv, err := sim.StartOPCUA("127.0.0.1", sim.OPCUAOptions{Tick: tick, Advertise: advertise})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	return srv
}

func newFixture(t *testing.T, collect string, interval time.Duration) *fixture {
	t.Helper()
	r, err := sim.NewRelay("")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	f := &fixture{relay: r, srv: startServer(t, interval/2, r.Addr())}
	r.SetBackend(f.srv.Addr())
	f.src, err = opcua.New(kilnSource(sim.EndpointVia(r.Addr()), collect, interval), nil, opcua.Options{ConnectTimeout: 3 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.src.Close()) })
	return f
}

// readUntil calls Read every interval until cond holds for the readings collected so far.
func readUntil(t *testing.T, src *opcua.Source, interval, within time.Duration, cond func([]reading.Reading) bool) []reading.Reading {
	t.Helper()
	var all []reading.Reading
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		rs, _ := src.Read(ctx)
		cancel()
		all = append(all, rs...)
		if cond(all) {
			return all
		}
		time.Sleep(interval / 4)
	}
	t.Fatalf("condition not met within %s (%d readings)", within, len(all))
	return nil
}

func TestSubscriptionDataArrives(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "subscribe", 200*time.Millisecond)
	rs := readUntil(t, f.src, 200*time.Millisecond, 10*time.Second, func(rs []reading.Reading) bool {
		seen := map[string]bool{}
		for _, r := range rs {
			seen[r.Tag] = true
		}
		return len(seen) == len(sim.OPCUAPoints())
	})
	for _, r := range rs {
		require.Equal(t, reading.Good, r.Quality.Severity, r.Tag)
		require.True(t, r.HasValue, r.Tag)
		require.Equal(t, reading.TimeDevice, r.TimeSource, r.Tag)
		require.NotEmpty(t, r.Raw)
	}
}

// pollerRun runs a Poller over src and returns its batches.
func pollerRun(t *testing.T, src collector.Source, interval time.Duration) <-chan collector.Batch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan collector.Batch, 1024)
	p := collector.NewPoller(src, interval, interval/2, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx, out)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return out
}

// waitBatch returns the first batch that satisfies cond, failing after within.
func waitBatch(t *testing.T, ch <-chan collector.Batch, within time.Duration, what string, cond func(collector.Batch) bool) collector.Batch {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case b := <-ch:
			if cond(b) {
				return b
			}
		case <-timer.C:
			t.Fatalf("no %s within %s", what, within)
		}
	}
}

func hasData(b collector.Batch) bool {
	if b.Err != nil {
		return false
	}
	for _, r := range b.Readings {
		if r.HasValue {
			return true
		}
	}
	return false
}

func failed(b collector.Batch) bool { return b.Err != nil }

// recoveryBound is the detection window (one Read) + the Poller's backoff (at most one
// interval) + one interval for the data, plus a generous margin for connection set-up
// on a loaded machine.
func recoveryBound(interval time.Duration) time.Duration { return 3*interval + 3*time.Second }

func TestRecoveryAfterCutConnection(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	f := newFixture(t, "subscribe", interval)
	batches := pollerRun(t, f.src, interval)
	waitBatch(t, batches, 10*time.Second, "data", hasData)

	f.relay.DropAll() // RST: a cable pull or a NAT timeout, the server keeps its session
	cut := time.Now()
	down := waitBatch(t, batches, recoveryBound(interval), "failed poll", failed)
	require.ErrorContains(t, down.Err, "opc.tcp://")
	up := waitBatch(t, batches, recoveryBound(interval), "data after the cut", hasData)
	t.Logf("down after %s, data again after %s", down.Start.Sub(cut), up.Start.Sub(cut))
	for _, r := range up.Readings {
		require.Equal(t, reading.Good, r.Quality.Severity)
	}
}

func TestRecoveryWhileUnreachable(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	f := newFixture(t, "subscribe", interval)
	batches := pollerRun(t, f.src, interval)
	waitBatch(t, batches, 10*time.Second, "data", hasData)

	f.relay.Pause() // reset, and refuse new connections
	waitBatch(t, batches, recoveryBound(interval), "failed poll", failed)
	// Still down a few polls later: no data while the server is unreachable.
	for range 3 {
		b := waitBatch(t, batches, recoveryBound(interval), "poll", func(collector.Batch) bool { return true })
		require.Error(t, b.Err)
		require.Empty(t, b.Readings)
	}
	f.relay.Resume()
	resumed := time.Now()
	up := waitBatch(t, batches, recoveryBound(interval), "data after resume", hasData)
	t.Logf("data again %s after resume", up.Start.Sub(resumed))
}

func TestRecoveryAfterServerRestart(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	f := newFixture(t, "subscribe", interval)
	batches := pollerRun(t, f.src, interval)
	waitBatch(t, batches, 10*time.Second, "data", hasData)

	// A new server instance behind the relay: sessions, subscriptions and namespace
	// indexes of the old one mean nothing to it. (Closing the gopcua server leaves its
	// sockets open, so the relay does the cut.)
	srv2 := startServer(t, interval/2, f.relay.Addr())
	t.Cleanup(func() { require.NoError(t, f.src.Close()) }) // before srv2 closes: its Close waits for clients
	f.relay.SetBackend(srv2.Addr())
	f.relay.DropAll()
	restarted := time.Now()
	waitBatch(t, batches, recoveryBound(interval), "failed poll", failed)
	up := waitBatch(t, batches, recoveryBound(interval), "data from the new server", hasData)
	t.Logf("data again %s after the restart", up.Start.Sub(restarted))
}

func TestPollMode(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	f := newFixture(t, "poll", interval)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rs []reading.Reading
	var err error
	for range 20 { // the first Reads may only start the connection
		if rs, err = f.src.Read(ctx); err == nil {
			break
		}
	}
	require.NoError(t, err)
	require.Len(t, rs, len(sim.OPCUAPoints()))
	for i, p := range sim.OPCUAPoints() {
		r := rs[i]
		require.Equal(t, "kiln1."+p.ID, r.Tag)
		require.True(t, r.HasValue, r.Tag)
		want, ok := f.srv.ValueAt(p.ID, r.Timestamp())
		require.True(t, ok)
		require.Zero(t, want.Cmp(r.Value), "%s: got %s want %s", r.Tag, r.Value, want)
	}
}

// TestSilentSubscriptionIsRebuilt: the connection and the watchdog read stay fine but
// notifications stop (gopcua #879: Connected, and nothing delivered). A server that has
// shown it pulses its clock and then goes quiet for 3 publishing intervals (at least
// 1 s each) makes Read fail, and the next connection delivers again.
func TestSilentSubscriptionIsRebuilt(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	r, err := sim.NewRelay("")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	srv := startServer(t, -1, r.Addr()) // pushes only on Notify
	r.SetBackend(srv.Addr())
	src, err := opcua.New(kilnSource(sim.EndpointVia(r.Addr()), "subscribe", interval), nil, opcua.Options{ConnectTimeout: 3 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, src.Close()) })

	read := func() ([]reading.Reading, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return src.Read(ctx)
	}
	// Connect, then pulse a few times.
	require.Eventually(t, func() bool { _, err := read(); return err == nil }, 10*time.Second, 50*time.Millisecond)
	var silent time.Time // the last notification cannot have arrived before this
	for range 4 {
		silent = time.Now()
		srv.Notify()
		time.Sleep(interval)
		_, err := read()
		require.NoError(t, err)
	}
	var failErr error
	require.Eventually(t, func() bool { _, failErr = read(); return failErr != nil }, 10*time.Second, 100*time.Millisecond)
	require.ErrorContains(t, failErr, "no notification")
	require.GreaterOrEqual(t, time.Since(silent), 3*time.Second, "not before 3 intervals of at least 1 s")
	// The rebuilt subscription delivers (the initial values of its new items).
	require.Eventually(t, func() bool {
		rs, err := read()
		return err == nil && len(rs) > 0
	}, 10*time.Second, 100*time.Millisecond)
}

// TestPotLineOverOPCUA polls the simulated pot line's nodes (its own namespace on the same
// server): every value, the anode-effect Booleans and the scaled counters included, reads
// back exactly as the simulator computes it.
func TestPotLineOverOPCUA(t *testing.T) {
	t.Parallel()
	srv := startServer(t, -1)
	src := config.Source{
		Name: "potline1", Kind: "opcua", Interval: config.Duration(200 * time.Millisecond), Timeout: config.Duration(100 * time.Millisecond),
		OPCUA: &config.OPCUA{Endpoint: srv.Endpoint(), Security: "none", Auth: "anonymous", Collect: "poll",
			PublishingInterval: config.Duration(200 * time.Millisecond), QueueSize: 10},
	}
	for _, p := range sim.PotLineOPCUAPoints() {
		src.Tags = append(src.Tags, config.Tag{ID: p.ID, Unit: p.Unit, Kind: p.Kind, Node: p.Node, Timestamp: "source"})
	}
	s, err := opcua.New(src, nil, opcua.Options{ConnectTimeout: 3 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rs []reading.Reading
	for range 40 { // the first Reads may only start the connection
		if rs, err = s.Read(ctx); err == nil {
			break
		}
		<-time.After(100 * time.Millisecond)
	}
	require.NoError(t, err)
	require.Len(t, rs, len(sim.PotLineOPCUAPoints()))
	for i, p := range sim.PotLineOPCUAPoints() {
		r := rs[i]
		require.Equal(t, "potline1."+p.ID, r.Tag)
		require.True(t, r.HasValue, r.Tag)
		want, ok := srv.PotLineValueAt(p.ID, r.Timestamp())
		require.True(t, ok)
		require.Zero(t, want.Cmp(r.Value), "%s: got %s want %s", r.Tag, r.Value, want)
	}
}
