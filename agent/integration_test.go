//go:build integration

package agent

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/sim"
)

// TestIntegrationMosquitto runs the pipeline against Debian's Mosquitto, stops the broker
// for 2 s mid-run (its persistence keeps the verifier's queue), and checks that every
// sealed block reaches the verifier.
func TestIntegrationMosquitto(t *testing.T) {
	bed := agenttest.New(t)
	mq := agenttest.Mosquitto(t, sim.MosquittoOptions{Persistence: true})
	v := bed.SubscribeTo(t, mq.URL())
	cfg, err := config.Load(bed.ConfigFile(t, mq.URL()))
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()

	require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, mq.Stop())
	<-time.After(2 * time.Second)
	require.NoError(t, mq.Start())
	require.Eventually(t, func() bool { s := a.Stats(); return s.Connected && s.Unpublished == 0 }, 40*time.Second, 50*time.Millisecond)
	cancel()
	require.NoError(t, <-runDone)
	final := a.Stats()
	require.Eventually(t, func() bool { return v.Summary().Blocks >= final.Blocks }, 20*time.Second, 20*time.Millisecond, "mosquitto log: %s", mq.Log())

	s := v.Stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Equal(t, final.Blocks, s.Blocks)
	require.Equal(t, final.Readings, s.Readings)
}
