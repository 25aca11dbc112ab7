package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// runAgent runs an agent on cfg until done reports true, then stops it gracefully and
// returns its final heads.
func runAgent(t *testing.T, cfg *config.Config, done func() bool) map[string]reading.StreamHead {
	t.Helper()
	a, err := New(cfg, Options{Version: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	require.Eventually(t, done, 20*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-runDone)
	heads := map[string]reading.StreamHead{}
	for name, h := range a.store.Heads() {
		heads[name] = reading.StreamHead{Stream: name, LogID: h.LogID[:], NextSeq: h.NextSeq, LastHash: h.LastHash[:]}
	}
	return heads
}

func genesisOf(v *agenttest.Verifier, logID []byte) *reading.GenesisBody {
	for _, r := range v.Records() {
		if g, ok := r.Record.Body.(*reading.GenesisBody); ok && string(r.LogID[:]) == string(logID) {
			return g
		}
	}
	return nil
}

// newLogIDs returns the log ids the verifier saw that are not in old.
func newLogIDs(v *agenttest.Verifier, old map[string]reading.StreamHead) map[string][]byte {
	known := map[string]bool{}
	for _, h := range old {
		known[string(h.LogID)] = true
	}
	out := map[string][]byte{}
	for _, r := range v.Records() {
		if !known[string(r.LogID[:])] {
			out[filepath.Base(r.Origin)] = append([]byte(nil), r.LogID[:]...)
		}
	}
	return out
}

// TestLostBufferGenesisNamesPreviousLog deletes the buffer between two runs: the new logs'
// genesis records name the previous logs' last seq and chain hash, read back from the
// agent's own retained status message.
func TestLostBufferGenesisNamesPreviousLog(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	first := runAgent(t, cfg, func() bool { return v.Summary().Readings >= 16 })

	require.NoError(t, os.Remove(cfg.Buffer.Path))
	runAgent(t, cfg, func() bool { return len(newLogIDs(v, first)) == 2 })

	for stream, logID := range newLogIDs(v, first) {
		g := genesisOf(v, logID)
		require.NotNil(t, g, stream)
		prev := first[stream]
		require.Equal(t, reading.ReasonBufferLost, g.Reason, stream)
		require.Equal(t, prev.LogID, g.PrevLogID, stream)
		require.NotNil(t, g.PrevLastSeq, stream)
		require.Equal(t, prev.NextSeq-1, *g.PrevLastSeq, stream)
		require.Equal(t, prev.LastHash, g.PrevLastHash, stream)
	}
}

// TestRolledBackBufferStartsNewLogs restores an older copy of the buffer (as bbolt falling
// back to an older meta page would): its heads are behind what the agent's retained status
// announced, so the file is moved aside and new logs begin instead of reusing seqs.
func TestRolledBackBufferStartsNewLogs(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	runAgent(t, cfg, func() bool { return v.Summary().Readings >= 16 })
	old, err := os.ReadFile(cfg.Buffer.Path)
	require.NoError(t, err)
	n := v.Summary().Readings
	second := runAgent(t, cfg, func() bool { return v.Summary().Readings >= n+16 })

	require.NoError(t, os.WriteFile(cfg.Buffer.Path, old, 0o600)) // the rollback
	runAgent(t, cfg, func() bool { return len(newLogIDs(v, second)) == 2 })

	aside, err := filepath.Glob(cfg.Buffer.Path + ".rollback-*")
	require.NoError(t, err)
	require.Len(t, aside, 1, "the rolled-back file is kept aside for inspection")
	for stream, logID := range newLogIDs(v, second) {
		g := genesisOf(v, logID)
		require.NotNil(t, g, stream)
		require.Equal(t, reading.ReasonBufferLost, g.Reason, stream)
		require.Equal(t, second[stream].LogID, g.PrevLogID, stream)
		require.Equal(t, second[stream].NextSeq-1, *g.PrevLastSeq, stream)
	}
	s := v.Stop(t)
	require.Zero(t, s.Failures, "no seq was reused: findings %v", s.Findings)
}
