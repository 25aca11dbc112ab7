package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEndToEndConnectionCut cuts the agent's connection to the broker for 5 s with a relay
// (the broker keeps running, so the verifier's persistent session keeps its queue): every
// seq reaches the verifier, with duplicates counted and no gap or failure.
func TestEndToEndConnectionCut(t *testing.T) {
	bed := agenttest.New(t)
	relay, err := sim.NewRelay(bed.Broker.Addr())
	require.NoError(t, err)
	defer relay.Close()

	v := bed.Subscribe(t)
	cfg, err := config.Load(bed.ConfigFile(t, "mqtt://"+relay.Addr()))
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()

	require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 10*time.Second, 20*time.Millisecond)
	relay.Pause()
	before := a.Stats()
	<-time.After(5 * time.Second)
	during := a.Stats()
	require.False(t, during.Connected, "the relay cut the connection")
	require.Greater(t, during.Blocks, before.Blocks, "sealing goes on during the outage")
	require.Greater(t, during.Unpublished, 0, "the backlog waits in the buffer")
	relay.Resume()

	require.Eventually(t, func() bool { s := a.Stats(); return s.Connected && s.Unpublished == 0 }, 40*time.Second, 50*time.Millisecond)
	cancel()
	require.NoError(t, <-runDone)
	final := a.Stats()
	require.Eventually(t, func() bool { return v.Summary().Blocks >= final.Blocks }, 10*time.Second, 20*time.Millisecond)

	s := v.Stop(t)
	t.Logf("sealed %d blocks (%d readings); verifier: %+v", final.Blocks, final.Readings, s)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Zero(t, s.Failures)
	require.Zero(t, s.GapsUndeclared)
	require.Zero(t, s.GapsDeclared)
	require.Equal(t, final.Blocks, s.Blocks, "every sealed block, each once")
	require.Equal(t, final.Readings, s.Readings)
}
