//go:build integration

package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
	"github.com/mrv-agent/mrv-agent/verify"
)

// logRef names one log at the verifier.
type logRef struct {
	origin string
	id     [16]byte
}

// seqAudit is what a verifier received, per log: the seqs of the records it accepted and
// the gap records among them.
type seqAudit struct {
	seqs    map[logRef]map[uint64]bool
	gapSeq  map[logRef][]*reading.GapSeqBody
	gapTime map[logRef][]*reading.GapTimeBody
	genesis map[logRef]*reading.GenesisBody
}

func audit(recs []verify.RecordOut) seqAudit {
	a := seqAudit{seqs: map[logRef]map[uint64]bool{}, gapSeq: map[logRef][]*reading.GapSeqBody{},
		gapTime: map[logRef][]*reading.GapTimeBody{}, genesis: map[logRef]*reading.GenesisBody{}}
	for _, r := range recs {
		k := logRef{r.Origin, r.LogID}
		if a.seqs[k] == nil {
			a.seqs[k] = map[uint64]bool{}
		}
		a.seqs[k][r.Seq] = true
		switch b := r.Record.Body.(type) {
		case *reading.GapSeqBody:
			a.gapSeq[k] = append(a.gapSeq[k], b)
		case *reading.GapTimeBody:
			a.gapTime[k] = append(a.gapTime[k], b)
		case *reading.GenesisBody:
			a.genesis[k] = b
		}
	}
	return a
}

// missing returns the seqs of a log between its lowest and highest received seq that never
// arrived, as inclusive ranges.
func (a seqAudit) missing(k logRef) [][2]uint64 {
	var seqs []uint64
	for s := range a.seqs[k] {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	var out [][2]uint64
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			out = append(out, [2]uint64{seqs[i-1] + 1, seqs[i] - 1})
		}
	}
	return out
}

// requireEverySeq checks that every log starts at seq 0 and has no seq missing.
func (a seqAudit) requireEverySeq(t *testing.T) {
	t.Helper()
	for k, seqs := range a.seqs {
		require.True(t, seqs[0], "%s %x: seq 0 missing", k.origin, k.id)
		require.Empty(t, a.missing(k), "%s %x: seqs missing", k.origin, k.id)
	}
}

func (a seqAudit) logsOf(origin string) []logRef {
	var out []logRef
	for k := range a.seqs {
		if k.origin == origin {
			out = append(out, k)
		}
	}
	return out
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const kilnOrigin = agenttest.Site + "/" + agenttest.Gateway + "/kiln1"

// waitPublished waits until the agent has published everything it stored.
func waitPublished(t *testing.T, ra *runningAgent, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { s := ra.Stats(); return s.Connected && s.Unpublished == 0 }, within, 50*time.Millisecond)
}

// waitHeads waits until the verifier has received the last sealed seq of every stream of
// the (stopped) agent, resends included.
func waitHeads(t *testing.T, ra *runningAgent, v *itVerifier, within time.Duration) {
	t.Helper()
	heads := ra.store.Heads()
	require.Eventually(t, func() bool {
		au := audit(v.Records())
		for name, h := range heads {
			k := logRef{agenttest.Site + "/" + agenttest.Gateway + "/" + name, h.LogID}
			if h.NextSeq > 0 && !au.seqs[k][h.NextSeq-1] {
				return false
			}
		}
		return true
	}, within, 100*time.Millisecond, "heads %v; verifier %+v", heads, v.Summary())
}

// TestIntegrationBufferFull stops the broker while the agent runs with a small buffer cap:
// the buffer drops the oldest unpublished blocks, and after the outage the verifier finds a
// gap-seq (buffer-full) naming exactly the seqs it never got, and nothing else missing.
func TestIntegrationBufferFull(t *testing.T) {
	bed := agenttest.New(t)
	mq := agenttest.Mosquitto(t, sim.MosquittoOptions{Persistence: true})
	v := startVerifier(t, bed, mq.URL(), verifierOptions{})
	cfg := itConfig(t, bed, mq.URL(), func(c *config.Config) {
		c.Buffer.MaxBytes = 48 << 10 // below validation's minimum: a few dozen blocks
		c.Sources[0].Interval = config.Duration(50 * time.Millisecond)
		c.Sources[0].Timeout = config.Duration(45 * time.Millisecond)
	})
	ra := itRunAgent(t, cfg, nil)
	require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 15*time.Second, 20*time.Millisecond)
	require.NoError(t, mq.Stop())
	require.Eventually(t, func() bool { return ra.store.Stats().Dropped >= 10 }, 30*time.Second, 50*time.Millisecond,
		"the cap is reached during the outage")
	require.NoError(t, mq.Start())
	waitPublished(t, ra, 40*time.Second)
	require.NoError(t, ra.stop())
	waitHeads(t, ra, v, 20*time.Second)
	<-time.After(3 * time.Second) // let reorder timeouts judge the hole

	s := v.stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Zero(t, s.GapsUndeclared)
	require.NotZero(t, s.GapsDeclared)

	au := audit(v.Records())
	require.Len(t, au.seqs, 2, "one log per stream")
	dropped := 0
	for k := range au.seqs {
		require.True(t, au.seqs[k][0], "%s: seq 0", k.origin)
		var declared [][2]uint64
		for _, g := range au.gapSeq[k] {
			require.Equal(t, reading.ReasonBufferFull, g.Reason)
			declared = append(declared, [2]uint64{g.First, g.Last})
		}
		require.Equal(t, mergeRanges(declared), mergeRanges(au.missing(k)), "%s: declared == missing, exactly", k.origin)
		dropped += len(declared)
	}
	require.NotZero(t, dropped)
}

// mergeRanges sorts inclusive ranges and merges adjacent ones.
func mergeRanges(rs [][2]uint64) [][2]uint64 {
	rs = append([][2]uint64(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
	var out [][2]uint64
	for _, r := range rs {
		if n := len(out); n > 0 && r[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestIntegrationCorruptBuffer garbles the buffer file between two runs: the agent moves it
// aside, starts new logs whose genesis says buffer-lost, and the verifier sees both logs of
// each stream complete.
func TestIntegrationCorruptBuffer(t *testing.T) {
	bed := agenttest.New(t)
	mq := agenttest.Mosquitto(t, sim.MosquittoOptions{Persistence: true})
	v := startVerifier(t, bed, mq.URL(), verifierOptions{})
	cfg := itConfig(t, bed, mq.URL(), nil)
	ra := itRunAgent(t, cfg, nil)
	require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 15*time.Second, 20*time.Millisecond)
	require.NoError(t, ra.stop())

	// Garble every data page's header (bbolt keeps checksums only on its meta pages).
	f, err := os.OpenFile(cfg.Buffer.Path, os.O_RDWR, 0)
	require.NoError(t, err)
	fi, err := f.Stat()
	require.NoError(t, err)
	const page = 4096
	for off := int64(2 * page); off < fi.Size(); off += page {
		_, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 16), off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())

	var logBuf syncBuffer
	ra2 := itRunAgent(t, cfg, slog.New(slog.NewTextHandler(&logBuf, nil)))
	aside, ok := ra2.store.Recovered()
	require.True(t, ok, "log: %s", logBuf.String())
	require.FileExists(t, aside)
	require.Contains(t, logBuf.String(), "buffer corrupt, moved aside")
	require.Eventually(t, func() bool { return v.Summary().Logs >= 4 && v.Summary().Readings >= 80 }, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, ra2.stop())
	waitHeads(t, ra2, v, 20*time.Second)

	s := v.stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Zero(t, s.GapsUndeclared)
	au := audit(v.Records())
	au.requireEverySeq(t)
	for _, origin := range []string{kilnOrigin, agenttest.Site + "/" + agenttest.Gateway + "/agent"} {
		logs := au.logsOf(origin)
		require.Len(t, logs, 2, origin)
		reasons := map[string]bool{}
		for _, k := range logs {
			g := au.genesis[k]
			require.NotNil(t, g, "%s %x starts with a genesis", origin, k.id)
			reasons[g.Reason] = true
		}
		require.True(t, reasons[reading.ReasonBufferLost], "%s: the new log declares the discontinuity: %v", origin, reasons)
	}
}

// TestIntegrationDiskFull puts the buffer on a 2 MiB tmpfs and fills it while the agent
// runs: commits fail with ENOSPC, the agent keeps running, drops the oldest pending readings
// beyond its cap, and once space returns declares them with a gap-time
// (buffer-unavailable); every committed block still reaches the verifier.
func TestIntegrationDiskFull(t *testing.T) {
	dir := tmpfs(t, "2m")
	defer func(n int) { maxPendingRecords = n }(maxPendingRecords)
	maxPendingRecords = 300

	bed := agenttest.New(t)
	mq := agenttest.Mosquitto(t, sim.MosquittoOptions{Persistence: true})
	v := startVerifier(t, bed, mq.URL(), verifierOptions{})
	cfg := itConfig(t, bed, mq.URL(), func(c *config.Config) { c.Buffer.Path = filepath.Join(dir, "buffer.db") })
	var logBuf syncBuffer
	ra := itRunAgent(t, cfg, slog.New(slog.NewTextHandler(&logBuf, nil)))
	require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 15*time.Second, 20*time.Millisecond)

	filler := filepath.Join(dir, "filler")
	fillDisk(t, filler)
	failedBefore := ra.Stats().FailedCommits
	require.Eventually(t, func() bool { return strings.Contains(logBuf.String(), "dropping the oldest pending readings") }, 30*time.Second, 50*time.Millisecond,
		"failed commits: %d; log: %s", ra.Stats().FailedCommits-failedBefore, logBuf.String())
	require.Contains(t, logBuf.String(), "no space left on device")
	select {
	case err := <-ra.done:
		t.Fatalf("the agent stopped on a full disk: %v", err)
	default:
	}

	require.NoError(t, os.Remove(filler))
	require.Eventually(t, func() bool {
		for _, r := range v.Records() {
			if g, ok := r.Record.Body.(*reading.GapTimeBody); ok && g.Reason == reading.ReasonBufferUnavailable {
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "log: %s", logBuf.String())
	waitPublished(t, ra, 20*time.Second)
	require.NoError(t, ra.stop())
	final := ra.Stats()
	waitHeads(t, ra, v, 20*time.Second)

	s := v.stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
	require.Zero(t, s.GapsUndeclared+s.GapsDeclared, "nothing committed is lost")
	require.Equal(t, final.Blocks, s.Blocks)
	require.Equal(t, final.Readings, s.Readings)
	au := audit(v.Records())
	au.requireEverySeq(t)
	var gaps []*reading.GapTimeBody
	for _, k := range au.logsOf(kilnOrigin) {
		for _, g := range au.gapTime[k] {
			if g.Reason == reading.ReasonBufferUnavailable {
				gaps = append(gaps, g)
			}
		}
	}
	require.Len(t, gaps, 1)
	require.Less(t, gaps[0].From, gaps[0].To)
	// No reading delivered lies inside the declared span: those are exactly the dropped ones.
	for _, r := range v.Records() {
		if r.Origin == kilnOrigin && r.Record.Kind == reading.KindReading {
			require.False(t, r.Record.Time >= gaps[0].From && r.Record.Time < gaps[0].To, "reading at %d inside the gap", r.Record.Time)
		}
	}
}

// tmpfs mounts a tmpfs of the given size on a new temporary directory. Mounting needs root:
// without it the test is skipped, except under CI=true, where it fails.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("the ENOSPC test needs root (mount -t tmpfs) and CI=true does not allow skipping it")
		}
		t.Skip("not root: cannot mount a tmpfs for the ENOSPC test (run as root, or under CI=true)")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		if ci {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs (%v: %s); the ENOSPC test needs CAP_SYS_ADMIN", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		_, err := f.Write(chunk)
		if err == nil {
			continue
		}
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		require.NoError(t, err)
	}
	for _, n := range []int{4096, 512, 1} { // the last partial blocks
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	require.NoError(t, f.Sync())
}
