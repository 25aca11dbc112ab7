package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// TestFirstReadingsSealedAtOnce: with a poll interval and a max_age far longer than the
// test waits, a start still commits (and publishes) a block of readings at once: the first
// poll does not wait for an aligned tick, and a stream's first readings do not wait for
// max_age.
func TestFirstReadingsSealedAtOnce(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	cfg.Blocks.MaxAge = config.Duration(time.Minute)
	cfg.Blocks.Heartbeat = config.Duration(time.Minute)
	cfg.Sources[0].Interval = config.Duration(time.Minute)
	cfg.Sources[0].Timeout = config.Duration(5 * time.Second)
	a, err := New(cfg, Options{Version: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()

	require.Eventually(t, func() bool { return v.Summary().Readings > 0 }, 10*time.Second, 10*time.Millisecond,
		"the first poll's readings are published long before an interval or max_age")
	require.Equal(t, uint64(len(cfg.Sources[0].Tags)), a.Stats().Readings, "one poll, sealed on arrival")
	cancel()
	require.NoError(t, <-runDone)
	s := v.Stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
}

func TestTrimPending(t *testing.T) {
	recs := func(n, c int) []reading.Record {
		p := make([]reading.Record, n, c)
		for i := range p {
			p[i].Time = int64(i)
		}
		return p
	}
	p := trimPending(recs(10, 16), 4)
	require.Len(t, p, 6)
	require.Equal(t, int64(4), p[0].Time)
	require.Equal(t, 16, cap(p), "a small array is kept")

	p = trimPending(recs(600, 100_000), 500) // a high-water array from a backlog
	require.Len(t, p, 100)
	require.Equal(t, int64(500), p[0].Time)
	require.Equal(t, 1000, cap(p), "twice a tick's worth")

	p = trimPending(recs(3000, 4096), 2000)
	require.Equal(t, 4096, cap(p), "in proportion to the tick: kept")
}
