//go:build integration

package agent

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/buffer"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
)

// Kills per suite (ISSUE 6: 20).
const kills = 20

// caughtUp reports whether the verifier holds every seq of every log from 0 up to a seq
// the running agent sealed at most lag ago, with no hole.
func caughtUp(ra *runningAgent, v *itVerifier, lag uint64) bool {
	au := audit(v.Records())
	for name, h := range ra.store.Heads() {
		k := logRef{agenttest.Site + "/" + agenttest.Gateway + "/" + name, h.LogID}
		seqs := au.seqs[k]
		if len(seqs) == 0 || !seqs[0] || len(au.missing(k)) > 0 {
			return false
		}
		var hi uint64
		for s := range seqs {
			hi = max(hi, s)
		}
		if hi+lag < h.NextSeq-1 {
			return false
		}
	}
	return true
}

// TestIntegrationMosquittoKills SIGKILLs Mosquitto (persistence on) 20 times while the agent
// publishes: a killed broker loses what it had acknowledged but not saved, and the
// verifier's resend requests get it back from the agent. Every seq ends up at the verifier
// with no gap at all.
func TestIntegrationMosquittoKills(t *testing.T) {
	bed := agenttest.New(t)
	mq := agenttest.Mosquitto(t, sim.MosquittoOptions{Persistence: true})
	// The agent's reconnect backoff grows to 30 s while the broker flaps, and it hears resend
	// requests only while connected: the verifier's three attempts are spread over that.
	v := startVerifier(t, bed, mq.URL(), verifierOptions{ResendRetry: 15 * time.Second})
	cfg := itConfig(t, bed, mq.URL(), func(c *config.Config) {
		c.Sources[0].Interval = config.Duration(50 * time.Millisecond)
		c.Sources[0].Timeout = config.Duration(45 * time.Millisecond)
	})
	var logBuf syncBuffer
	ra := itRunAgent(t, cfg, slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 15*time.Second, 20*time.Millisecond)
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			os.WriteFile("/tmp/mqkills.log", []byte(logBuf.String()+"\n\n"+b.String()), 0o644)
		}
	})

	for i := range kills {
		<-time.After(time.Duration(1500+rand.IntN(1000)) * time.Millisecond)
		if i%2 == 0 {
			// The verifier is away: the broker queues its messages and saves them only once a
			// second, so the kill loses some it had acknowledged to the agent.
			v.pause(t)
			<-time.After(time.Duration(1000+rand.IntN(1000)) * time.Millisecond)
		}
		require.NoError(t, mq.Kill(), "kill %d", i)
		require.NoError(t, mq.Start(), "restart %d", i)
		if i%2 == 0 {
			v.resume()
		}
	}
	// The verifier asks at most three times per hole; requests sent while the agent was
	// away (its session is clean, so they are not queued for it) are lost. What is still
	// missing once the broker is stable is asked for again, the same way, every 5 s.
	reasked := 0
	if !assert.Eventually(t, func() bool {
		if caughtUp(ra, v, 200) {
			return true
		}
		au := audit(v.Records())
		for k := range au.seqs {
			stream := k.origin[strings.LastIndexByte(k.origin, '/')+1:]
			for _, r := range au.missing(k) {
				v.ask(t, stream, k.id, r[0], r[1])
				reasked++
			}
		}
		return false
	}, 90*time.Second, 5*time.Second) {
		t.Fatalf("not caught up: verifier %+v; agent %+v; uplink %+v", v.Summary(), ra.Stats(), ra.pub.Stats())
	}
	require.NoError(t, ra.stop())
	waitHeads(t, ra, v, 30*time.Second)

	s := v.stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Zero(t, s.GapsUndeclared)
	require.Zero(t, s.GapsDeclared, "every seq is present")
	require.NotZero(t, s.ResendRequests, "the kills lost acknowledged messages, which resends recovered")
	au := audit(v.Records())
	au.requireEverySeq(t)
	require.Len(t, au.seqs, 2, "one log per stream")
	t.Logf("verifier: %d blocks, %d readings, %d duplicates, %d resend requests (+%d asked again by the test); uplink reconnects %d",
		s.Blocks, s.Readings, s.Duplicates, s.ResendRequests, reasked, ra.pub.Stats().Reconnects)
}

// childConfigEnv makes TestIntegrationAgentChild run an agent from the config it names: the
// parent test runs this test binary as a subprocess to SIGKILL it.
const childConfigEnv = "MRV_IT_AGENT_CONFIG"

// TestIntegrationAgentChild is the subprocess of TestIntegrationAgentKills; it does nothing
// when run directly.
func TestIntegrationAgentChild(t *testing.T) {
	path := os.Getenv(childConfigEnv)
	if path == "" {
		t.Skip("the subprocess of TestIntegrationAgentKills")
	}
	cfg, err := config.Load(path)
	require.NoError(t, err)
	a, err := New(cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	require.NoError(t, err)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	require.NoError(t, a.Run(ctx))
}

// TestIntegrationAgentKills SIGKILLs the agent (a subprocess) 20 times under load, restarting
// it on the same buffer each time: every committed block is delivered, each stream keeps one
// log with a continuous chain, and the only gaps are the declared downtimes (gap-time
// agent-down); no seq is missing.
func TestIntegrationAgentKills(t *testing.T) {
	bed := agenttest.New(t)
	mq := agenttest.Mosquitto(t, sim.MosquittoOptions{Persistence: true})
	v := startVerifier(t, bed, mq.URL(), verifierOptions{})
	cfgPath := bed.ConfigFile(t, mq.URL())
	var out syncBuffer
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIntegrationAgentChild$")
		cmd.Env = append(os.Environ(), childConfigEnv+"="+cfgPath)
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		return cmd
	}
	readingsBefore := uint64(0)
	for i := range kills {
		cmd := start()
		// Let it start, commit and publish some readings, then kill it at a random moment.
		require.Eventually(t, func() bool { return v.Summary().Readings > readingsBefore }, 30*time.Second, 20*time.Millisecond,
			"run %d: %s", i, out.String())
		<-time.After(time.Duration(rand.IntN(1000)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		readingsBefore = v.Summary().Readings
	}
	cmd := start()
	require.Eventually(t, func() bool { return v.Summary().Readings > readingsBefore+40 }, 30*time.Second, 20*time.Millisecond, "%s", out.String())
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_ = cmd.Wait() // the child's goleak check may report paho's goroutines: not this test's subject

	// The last run stopped cleanly and published everything; the heads are in the buffer.
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	store, err := buffer.Open(cfg.Buffer.Path, buffer.Options{})
	require.NoError(t, err)
	heads := store.Heads()
	require.NoError(t, store.Close())
	require.Eventually(t, func() bool {
		au := audit(v.Records())
		for name, h := range heads {
			k := logRef{agenttest.Site + "/" + agenttest.Gateway + "/" + name, h.LogID}
			if !au.seqs[k][h.NextSeq-1] {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond)

	s := v.stop(t)
	require.True(t, s.Clean(), "findings: %v\n%s", s.Findings, out.String())
	require.Zero(t, s.GapsUndeclared+s.GapsDeclared, "no seq missing")
	au := audit(v.Records())
	au.requireEverySeq(t)
	require.Len(t, au.seqs, 2, "one log per stream across %d kills", kills)
	downs := 0
	for k := range au.seqs {
		for _, g := range au.gapTime[k] {
			if g.Reason == reading.ReasonAgentDown {
				downs++
			}
		}
	}
	require.GreaterOrEqual(t, downs, 2*kills, "each restart declares its downtime in both streams")
	t.Logf("verifier: %d blocks, %d readings, %d duplicates, %d agent-down gap-times", s.Blocks, s.Readings, s.Duplicates, downs)
}
