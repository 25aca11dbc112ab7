package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent"
	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/sim"
)

// TestStatusCommandExitFollowsReadiness: `mrv-agent status` exits 0 while the agent is
// ready, 1 once the uplink has been down past its backlog budget, 0 again after the
// uplink recovers, and 2 when there is no agent to ask.
func TestStatusCommandExitFollowsReadiness(t *testing.T) {
	bed := agenttest.New(t)
	relay, err := sim.NewRelay(bed.Broker.Addr())
	require.NoError(t, err)
	defer relay.Close()
	cfg, err := config.Load(bed.ConfigFile(t, "mqtt://"+relay.Addr()))
	require.NoError(t, err)
	a, err := agent.New(cfg, agent.Options{Version: "test", StatusListen: "127.0.0.1:0", BacklogBudget: time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-runDone)
	}()

	var out, errOut bytes.Buffer
	status := func() int {
		out.Reset()
		errOut.Reset()
		return run(context.Background(), []string{"status", "--addr", a.StatusAddr()}, &out, &errOut)
	}
	require.Eventually(t, func() bool { return status() == 0 && strings.Contains(out.String(), "uplink  connected") }, 15*time.Second, 100*time.Millisecond,
		"ready; %s%s", &out, &errOut)
	require.Contains(t, out.String(), "kiln1")
	require.NotContains(t, out.String(), "\x1b[", "no colour when not on a terminal")
	for _, want := range []string{"SOURCE", "STATE", "STREAM", "NEXT SEQ", "UNPUBLISHED", "uplink", "buffer"} {
		require.Contains(t, out.String(), want)
	}

	relay.Pause()
	require.Eventually(t, func() bool { return status() == 1 }, 30*time.Second, 100*time.Millisecond, "not ready while the uplink is down")
	require.Contains(t, errOut.String(), "not ready: uplink down with a backlog")
	require.Contains(t, out.String(), "NOT READY")
	require.Contains(t, out.String(), "DISCONNECTED")

	relay.Resume()
	require.Eventually(t, func() bool { return status() == 0 }, 40*time.Second, 100*time.Millisecond, "ready again; %s%s", &out, &errOut)

	code := run(context.Background(), []string{"status", "--addr", "127.0.0.1:1", "--timeout", "2s"}, &out, &errOut)
	require.Equal(t, 2, code, "no agent there")
}

func TestPrintTableAlignsColouredCells(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, true, [][]cell{{c("A"), c("STATE"), c("X")}, {c("long-name"), {"up", ansiGreen}, c("1")}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 2)
	plain := strings.NewReplacer(ansiGreen, "", ansiReset, "").Replace(lines[1])
	require.Equal(t, strings.Index(lines[0], "X"), strings.Index(plain, "1"), "columns line up once colours are removed")
}
