package agent

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
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

// TestEndToEndKeyRotation rotates the key mid-stream the way `rotate-key` does (the next key
// file appears beside the current one): every stream carries a key-rotation record, later
// blocks are signed by the new key, and a verifier given only the first key accepts the
// whole stream.
func TestEndToEndKeyRotation(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()

	require.Eventually(t, func() bool { return v.Summary().Readings >= 24 }, 10*time.Second, 20*time.Millisecond)
	next, err := seal.GenerateKey()
	require.NoError(t, err)
	require.NoError(t, seal.WriteKey(NextKeyPath(bed.KeyFile), next))
	require.Eventually(t, func() bool {
		_, err := os.Stat(NextKeyPath(bed.KeyFile))
		return os.IsNotExist(err)
	}, 10*time.Second, 20*time.Millisecond, "the agent takes the next key")
	loaded, err := seal.LoadKey(bed.KeyFile)
	require.NoError(t, err)
	require.Equal(t, next.Kid, loaded.Kid, "the next key is now the key file")
	pub, err := seal.LoadPublicKey(bed.KeyFile + ".pub")
	require.NoError(t, err)
	require.Equal(t, next.Public, pub)

	n := v.Summary().Readings
	require.Eventually(t, func() bool { return v.Summary().Readings >= n+24 }, 10*time.Second, 20*time.Millisecond)
	cancel()
	require.NoError(t, <-runDone)
	final := a.Stats()
	require.Eventually(t, func() bool { return v.Summary().Blocks >= final.Blocks }, 10*time.Second, 20*time.Millisecond)
	s := v.Stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Equal(t, final.Blocks, s.Blocks)

	rotations := map[string]int{}
	for _, r := range v.Records() {
		if kr, ok := r.Record.Body.(*reading.KeyRotationBody); ok {
			require.Equal(t, next.Kid[:], kr.Kid)
			rotations[r.Origin]++
		}
	}
	require.Len(t, rotations, 2, "a key-rotation record in every stream")
	for origin, c := range rotations {
		require.Equal(t, 1, c, origin)
	}
}

// TestInterruptedRotationCompletes simulates a crash after the commit that carried the
// rotation and before the key files were renamed: the next start completes the rename and
// signs with the new key; a key file that matches neither is refused.
func TestInterruptedRotationCompletes(t *testing.T) {
	bed := agenttest.New(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	a, err := New(cfg, Options{})
	require.NoError(t, err)
	next, err := seal.GenerateKey()
	require.NoError(t, err)
	require.NoError(t, seal.WriteKey(NextKeyPath(bed.KeyFile), next))
	require.NoError(t, a.tick(), "the first tick seals genesis and the rotation")
	require.Equal(t, next.Kid, a.key.Kid)
	require.NoError(t, a.store.Close())
	a.closeSources()
	// Put the files back as a crash between that commit and the rename leaves them: the old
	// key in the key file, the new one still waiting as the next key.
	require.NoError(t, os.Rename(bed.KeyFile, NextKeyPath(bed.KeyFile)))
	require.NoError(t, os.Rename(bed.KeyFile+".pub", NextKeyPath(bed.KeyFile)+".pub"))
	require.NoError(t, seal.WriteKey(bed.KeyFile, bed.Key))

	b, err := New(cfg, Options{})
	require.NoError(t, err)
	require.Equal(t, next.Kid, b.key.Kid, "the interrupted rotation was completed")
	require.NoFileExists(t, NextKeyPath(bed.KeyFile))
	require.NoError(t, b.store.Close())
	b.closeSources()

	// A key file that is neither the key in force nor its successor is refused.
	other, err := seal.GenerateKey()
	require.NoError(t, err)
	require.NoError(t, os.Remove(bed.KeyFile))
	require.NoError(t, seal.WriteKey(bed.KeyFile+"-x", other))
	require.NoError(t, os.Rename(bed.KeyFile+"-x", bed.KeyFile))
	_, err = New(cfg, Options{})
	require.ErrorContains(t, err, "restore that key file")
}

// TestEndToEndResend asks the agent for blocks of its kiln stream: what the buffer still
// retains is published again (byte-identical: the verifier counts duplicates), and what
// retention removed is declared by a signed gap-seq record with reason expired.
func TestEndToEndResend(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	path := bed.ConfigFile(t, bed.Broker.URL())
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(text), "buffer: {path:", "buffer: {retain: 1s, path:", 1)), 0o600))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "test"})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-runDone)
	}()

	// Run until retention (1 s after publication) has removed the first blocks.
	require.Eventually(t, func() bool { return v.Summary().Readings >= 200 }, 20*time.Second, 20*time.Millisecond)
	var logID []byte
	var lastSeq uint64
	for _, r := range v.Records() {
		if strings.HasSuffix(r.Origin, "/kiln1") {
			logID, lastSeq = r.LogID[:], r.Seq
		}
	}
	require.NotNil(t, logID)
	req, err := reading.EncodeResendRequest(&reading.ResendRequest{Stream: "kiln1", LogID: logID, First: 0, Last: lastSeq})
	require.NoError(t, err)
	before := v.Summary().Duplicates
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(bed.Broker.URL()).SetClientID("test-requester"))
	tok := pub.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	defer pub.Disconnect(100)
	tok = pub.Publish(reading.ResendTopic(agenttest.Site, agenttest.Gateway), 1, false, req)
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())

	var expired *reading.GapSeqBody
	require.Eventually(t, func() bool {
		for _, r := range v.Records() {
			if g, ok := r.Record.Body.(*reading.GapSeqBody); ok && g.Reason == reading.ReasonExpired {
				expired = g
			}
		}
		return expired != nil && v.Summary().Duplicates > before
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, uint64(0), expired.First)
	require.Less(t, expired.Last, lastSeq, "the recent blocks are still retained and were resent")
	require.Len(t, expired.LastHash, 32)
	s := v.Summary()
	require.Zero(t, s.Failures, "findings: %v", s.Findings)
}

// TestEndToEndSourceDownGap cuts the Modbus connection for longer than the poll interval:
// the failed polls are Bad readings (never zeros), and when the device is back a gap-time
// record (reason source-down) declares the time without data.
func TestEndToEndSourceDownGap(t *testing.T) {
	bed := agenttest.New(t)
	relay, err := sim.NewRelay(bed.Kiln.Addr())
	require.NoError(t, err)
	defer relay.Close()
	v := bed.Subscribe(t)
	path := bed.ConfigFile(t, bed.Broker.URL())
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(text), bed.Kiln.URL(), "tcp://"+relay.Addr(), 1)), 0o600))
	cfg, err := config.Load(path)
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "test", NoStatus: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-runDone)
	}()

	require.Eventually(t, func() bool { return v.Summary().Readings >= 16 }, 10*time.Second, 20*time.Millisecond)
	cut := time.Now()
	relay.Pause()
	<-time.After(1500 * time.Millisecond)
	relay.Resume()
	back := time.Now()

	var gap *reading.GapTimeBody
	require.Eventually(t, func() bool {
		for _, r := range v.Records() {
			if g, ok := r.Record.Body.(*reading.GapTimeBody); ok && g.Reason == reading.ReasonSourceDown {
				gap = g
			}
		}
		return gap != nil
	}, 10*time.Second, 20*time.Millisecond)
	require.GreaterOrEqual(t, gap.From, cut.Add(-200*time.Millisecond).UnixNano(), "the gap starts at the first failed poll")
	require.LessOrEqual(t, gap.From, cut.Add(300*time.Millisecond).UnixNano())
	require.GreaterOrEqual(t, gap.To, back.Add(-100*time.Millisecond).UnixNano(), "and ends at the first good poll after the cut")
	for _, r := range v.Records() {
		if rd, ok := r.Record.Reading(); ok && rd.Time > gap.From && rd.Time < gap.To {
			require.False(t, rd.HasValue, "no value inside the gap: %s at %d", rd.Tag, rd.Time)
			require.Equal(t, reading.Bad, rd.Quality.Severity)
		}
	}
}
