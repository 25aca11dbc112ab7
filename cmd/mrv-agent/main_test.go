package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// childEnv makes the test binary behave as mrv-agent itself, so tests can run the real
// command line in a subprocess and kill it.
const childEnv = "MRV_AGENT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// startAgent runs `mrv-agent run -c cfg` as a subprocess; its log goes to logBuf.
func startAgent(t *testing.T, cfg string, logBuf *bytes.Buffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "-c", cfg)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = logBuf, logBuf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// TestRestartAfterSIGKILL kills the agent without a graceful stop and starts it again on the
// same buffer: log_id, seq and the chain continue, a gap-time record (agent-down) covers the
// downtime in every stream, and every block committed before the kill is delivered.
func TestRestartAfterSIGKILL(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	cfg := bed.ConfigFile(t, bed.Broker.URL())

	var log1, log2 bytes.Buffer
	first := startAgent(t, cfg, &log1)
	require.Eventually(t, func() bool { return v.Summary().Readings >= 80 }, 20*time.Second, 20*time.Millisecond, "log: %s", &log1)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	err := first.Wait()
	require.Error(t, err, "killed, not stopped")
	killedAt := time.Now()
	<-time.After(500 * time.Millisecond) // a downtime the gap-time record must cover

	second := startAgent(t, cfg, &log2)
	require.Eventually(t, func() bool {
		for _, r := range v.Records() {
			if r.Record.Kind == reading.KindReading && r.Record.Time > killedAt.Add(time.Second).UnixNano() {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "log: %s", &log2)
	require.NoError(t, second.Process.Signal(syscall.SIGTERM))
	require.NoError(t, second.Wait(), "graceful stop; log: %s", &log2)

	// The graceful stop published everything; give the broker a moment to deliver it.
	<-time.After(500 * time.Millisecond)
	s := v.Stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Zero(t, s.GapsDeclared+s.GapsUndeclared, "no seq is missing")
	require.Equal(t, 2, s.Logs, "the agent and kiln1 streams continue their logs: no new log_id")

	recs := v.Records()
	genesis := map[string]int{}
	gaps := map[string][]*reading.GapTimeBody{}
	for _, r := range recs {
		switch b := r.Record.Body.(type) {
		case *reading.GenesisBody:
			genesis[r.Origin]++
		case *reading.GapTimeBody:
			gaps[r.Origin] = append(gaps[r.Origin], b)
		}
	}
	for _, stream := range []string{"agent", "kiln1"} {
		origin := agenttest.Site + "/" + agenttest.Gateway + "/" + stream
		require.Equal(t, 1, genesis[origin], "one genesis in %s", stream)
		require.Len(t, gaps[origin], 1, "one restart gap in %s", stream)
		g := gaps[origin][0]
		require.Equal(t, reading.ReasonAgentDown, g.Reason)
		require.LessOrEqual(t, g.From, killedAt.UnixNano(), "the gap starts at the last commit before the kill")
		require.Greater(t, g.To, killedAt.Add(400*time.Millisecond).UnixNano(), "the gap ends after the downtime")
	}
	// Seqs are contiguous per origin (the verifier already refused any chain break).
	next := map[string]uint64{}
	for _, r := range recs {
		require.Equal(t, next[r.Origin], r.Seq, "seq of %s", r.Origin)
		next[r.Origin] = r.Seq + 1
	}
	require.Contains(t, log2.String(), "agent stopped")
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	run1 := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, _ := run1("version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "mrv-agent")

	code, _, stderr := run1("nope")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown command "nope"`)

	code, out, _ = run1("example-config")
	require.Equal(t, 0, code)
	example := filepath.Join(dir, "example.yaml")
	require.NoError(t, os.WriteFile(example, []byte(out), 0o600))
	code, out, stderr = run1("validate", "-c", example)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "ok")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(must(os.ReadFile(example))), "address: 0", "address: 70000", 1)), 0o600))
	code, _, stderr = run1("validate", "-c", bad)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "70000 is out of range 0..65535")

	key := filepath.Join(dir, "k.key")
	code, out, _ = run1("keygen", "-o", key)
	require.Equal(t, 0, code)
	require.Contains(t, out, "kid ")
	fi, err := os.Stat(key)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.FileExists(t, key+".pub")

	code, _, stderr = run1("verify", "--file", filepath.Join(dir, "x"))
	require.Equal(t, 2, code, "no --pubkey and no --tofu")
	require.Contains(t, stderr, "--pubkey")
	code, _, _ = run1("verify", "--file", filepath.Join(dir, "missing"), "--pubkey", key+".pub")
	require.Equal(t, 2, code, "I/O error")
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestVerifyAndCaptureCommands runs the agent, captures its stream and verifies it live
// (--json, --tofu) and from the capture file; a tampered capture exits 1.
func TestVerifyAndCaptureCommands(t *testing.T) {
	bed := agenttest.New(t)
	var agentLog bytes.Buffer
	agentCmd := startAgent(t, bed.ConfigFile(t, bed.Broker.URL()), &agentLog)
	dir := t.TempDir()
	capture := filepath.Join(dir, "stream.cbor")
	// Subscribe with wildcards only once the agent's birth is retained: mochi v2.7.9 reads
	// a topic's retained path unlocked while it scans for a new subscription's retained
	// messages, a data race with a concurrent retained publish that -race reports.
	require.Eventually(t, func() bool { return bed.Broker.Server().Topics.Retained.Len() > 0 }, 10*time.Second, 10*time.Millisecond)

	type result struct {
		code         int
		stdout, errs string
	}
	runCmd := func(args ...string) result {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		return result{code, out.String(), errb.String()}
	}
	capDone := make(chan result, 1)
	go func() {
		capDone <- runCmd("capture", "--broker", bed.Broker.URL(), "--topic", "mrv/v1/+/+/+/blocks", "--out", capture, "--duration", "3s", "--client-id", "cap")
	}()
	live := runCmd("verify", "--broker", bed.Broker.URL(), "--topic", agenttest.BlocksTopic, "--tofu", "--json", "--duration", "3s", "--client-id", "live")
	c := <-capDone
	// The agent's death message is a retained publish: let the broker finish with the
	// two subscribers first (see sim.Broker.Gone).
	require.Eventually(t, func() bool { return bed.Broker.Gone("cap") && bed.Broker.Gone("live") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, agentCmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, agentCmd.Wait(), "log: %s", &agentLog)

	require.Equal(t, 0, c.code, c.errs)
	require.Contains(t, c.stdout, "captured")
	require.Equal(t, 0, live.code, "stderr: %s\nstdout: %s", live.errs, live.stdout)
	lines := strings.Split(strings.TrimSpace(live.stdout), "\n")
	require.Greater(t, len(lines), 8)
	require.Contains(t, lines[0], `"origin":"test-plant/gw1/kiln1"`)
	require.Regexp(t, `"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"`, lines[0])
	require.Regexp(t, `^\{"summary":\{"blocks":\d+,"readings":\d+,"duplicates":0,"gaps_declared":0,"gaps_undeclared":0,"failures":0\}\}$`, lines[len(lines)-1])

	pub := bed.KeyFile + ".pub"
	offline := runCmd("verify", "--file", capture, "--pubkey", pub)
	require.Equal(t, 0, offline.code, "stderr: %s\nstdout: %s", offline.errs, offline.stdout)
	require.Contains(t, offline.stdout, "failures 0")

	// Flip one byte near the end of the capture (inside the last envelope's signature).
	data, err := os.ReadFile(capture)
	require.NoError(t, err)
	data[len(data)-10] ^= 0x40
	tampered := filepath.Join(dir, "tampered.cbor")
	require.NoError(t, os.WriteFile(tampered, data, 0o600))
	bad := runCmd("verify", "--file", tampered, "--pubkey", pub)
	require.Equal(t, 1, bad.code, "stdout: %s", bad.stdout)
	require.Contains(t, bad.stdout, "bad-signature")
}

// TestRotateKeyOffline rotates the key of a gateway whose agent is not running: the command
// seals the rotation into the buffer itself and promotes the key files.
func TestRotateKeyOffline(t *testing.T) {
	bed := agenttest.New(t)
	cfg := bed.ConfigFile(t, bed.Broker.URL())
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"rotate-key", "-c", cfg}, &out, &errb)
	require.Equal(t, 0, code, "stderr: %s", errb.String())
	require.Contains(t, out.String(), "no agent was running")
	require.NoFileExists(t, bed.KeyFile+".next")
	k, err := seal.LoadKey(bed.KeyFile)
	require.NoError(t, err)
	require.NotEqual(t, bed.Key.Kid, k.Kid)
	require.Contains(t, out.String(), seal.KidString(k.Kid))
}
