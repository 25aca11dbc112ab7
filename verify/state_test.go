package verify

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// TestStateContinues verifies half a stream, closes, and continues in a new Verifier from
// the state file alone: the second run sees only the second half (after a key rotation the
// first run followed) and is clean; a block of the first half again is a duplicate.
func TestStateContinues(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	s := newTestStream(t, k1, origin)
	envs := s.blocks(4, 3)
	rot := reading.Record{Kind: reading.KindKeyRotation, Time: t0.UnixNano(), Body: &reading.KeyRotationBody{Kid: k2.Kid[:], PublicKey: k2.Public}}
	envs = append(envs, s.seal(append(readingRecs(2, 5000), rot)...))
	s.sealer.SetKey(k2)
	envs = append(envs, s.seal(readingRecs(3, 6000)...), s.seal(readingRecs(3, 7000)...), s.seal(readingRecs(3, 8000)...))
	path := filepath.Join(t.TempDir(), "state.db")

	v1, _ := newVerifier(t, Options{StatePath: path}, k1)
	feed(v1, s.topic, envs[0], envs[1], envs[2], envs[3], envs[4], envs[6]) // envs[6] waits for envs[5]
	_, err := New(Options{Keys: []ed25519.PublicKey{k1.Public}, StatePath: path})
	require.ErrorContains(t, err, "state file", "one verifier per state file")
	sum1 := v1.Finish()
	require.Equal(t, uint64(6), sum1.Blocks, "Finish flushed the window: a gap for this run")
	require.Equal(t, uint64(1), sum1.GapsUndeclared)
	require.NoError(t, v1.Close())

	v2, c := newVerifier(t, Options{StatePath: path}, k1)
	require.Equal(t, 1, v2.Summary().Waiting, "the waiting block was restored")
	v2.Add(t0, s.topic, envs[3].Bytes) // seen by the first run
	feed(v2, s.topic, envs[5], envs[7])
	sum2 := v2.Finish()
	require.True(t, sum2.Clean(), "%v", sum2.Findings)
	require.Empty(t, sum2.Findings)
	require.Equal(t, uint64(3), sum2.Blocks)
	require.Equal(t, uint64(1), sum2.Duplicates)
	require.Len(t, c.got, 9)
	require.Equal(t, envs[5].FirstSeq, c.got[0].Seq)
	require.NoError(t, v2.Close())
	require.NoError(t, v2.Close(), "Close is idempotent")

	// An undeclared gap still open is carried over, and filled by a later run.
	v3, _ := newVerifier(t, Options{StatePath: path}, k1)
	s.sealer.SetKey(k2)
	next := []reading.Envelope{s.seal(readingRecs(1, 9000)...), s.seal(readingRecs(1, 9100)...), s.seal(readingRecs(1, 9200)...)}
	feed(v3, s.topic, next[0], next[2])
	v3.Tick(t0.Add(time.Minute)) // the reorder window gives up: a hole, saved as such
	sum3 := v3.Finish()
	require.Equal(t, uint64(1), sum3.GapsUndeclared)
	require.NoError(t, v3.Close())
	v4, _ := newVerifier(t, Options{StatePath: path}, k1)
	require.Equal(t, uint64(1), v4.Summary().GapsUndeclared, "reported again until resolved")
	feed(v4, s.topic, next[1])
	sum4 := v4.Finish()
	require.True(t, sum4.Clean(), "%v", sum4.Findings)
	require.Equal(t, []string{KindGapFilled}, kinds(sum4))
	require.NoError(t, v4.Close())
}

func TestStateFileErrors(t *testing.T) {
	k := newKey(t)
	dir := t.TempDir()
	_, err := New(Options{Keys: []ed25519.PublicKey{k.Public}, StatePath: filepath.Join(dir, "missing", "state.db")})
	require.Error(t, err)
	bad := filepath.Join(dir, "bad.db")
	require.NoError(t, os.WriteFile(bad, []byte("not a bbolt file at all, not at all"), 0o600))
	_, err = New(Options{Keys: []ed25519.PublicKey{k.Public}, StatePath: bad})
	require.Error(t, err)
}

// TestResendFillsGap: an undeclared gap makes the verifier ask for the missing range
// (rate-limited, retried a bounded number of times); the resent block fills the gap.
func TestResendFillsGap(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(6, 3)
	type req struct {
		topic string
		r     *reading.ResendRequest
	}
	var reqs []req
	resend := func(topic string, payload []byte) {
		r, err := reading.DecodeResendRequest(payload)
		require.NoError(t, err)
		reqs = append(reqs, req{topic, r})
	}
	v, c := newVerifier(t, Options{Resend: resend, ReorderTimeout: 5 * time.Second, ResendRetry: 10 * time.Second}, k)
	v.Add(t0, s.topic, envs[0].Bytes)
	v.Add(t0, s.topic, envs[1].Bytes)
	v.Add(t0, s.topic, envs[4].Bytes) // envs[2] and envs[3] lost by the broker
	v.Add(t0, s.topic, envs[5].Bytes)
	require.Empty(t, reqs)
	v.Tick(t0.Add(6 * time.Second))
	require.Len(t, reqs, 1)
	require.Equal(t, "mrv/v1/plant1/gw1/cmd/resend", reqs[0].topic)
	require.Equal(t, &reading.ResendRequest{Stream: "kiln1", LogID: s.st.LogID[:], First: envs[2].FirstSeq, Last: envs[3].LastSeq()}, reqs[0].r)
	v.Tick(t0.Add(7 * time.Second))
	require.Len(t, reqs, 1, "not again before ResendRetry")

	// The agent resends; the later block first.
	v.Add(t0.Add(8*time.Second), s.topic, envs[3].Bytes)
	require.Equal(t, uint64(1), v.Summary().GapsUndeclared)
	v.Add(t0.Add(8*time.Second), s.topic, envs[2].Bytes)
	sum := v.Summary()
	require.Zero(t, sum.GapsUndeclared)
	require.Equal(t, uint64(6), sum.Blocks)
	v.Tick(t0.Add(time.Minute))
	require.Len(t, reqs, 1, "nothing more to ask")
	sum = v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Equal(t, []string{KindGapFilled}, kinds(sum))
	require.Equal(t, uint64(1), sum.ResendRequests)
	require.Len(t, c.got, 2+5*3)

	t.Run("retries bounded", func(t *testing.T) {
		reqs = nil
		v, _ := newVerifier(t, Options{Resend: resend, ReorderTimeout: time.Second, ResendRetry: time.Second}, k)
		feed(v, s.topic, envs[0], envs[2])
		for i := range 20 {
			v.Tick(t0.Add(time.Duration(5+i) * time.Second))
		}
		require.Len(t, reqs, maxResendAttempts)
	})
	t.Run("rate limited per gateway", func(t *testing.T) {
		reqs = nil
		v, _ := newVerifier(t, Options{Resend: resend, ReorderWindow: 1}, k)
		// Many gaps in one go: every other block of a long stream.
		long := newTestStream(t, k, origin)
		le := long.blocks(30, 1)
		v.Add(t0, s.topic, le[0].Bytes)
		for i := 2; i < len(le); i += 2 {
			v.Add(t0, s.topic, le[i].Bytes)
		}
		require.LessOrEqual(t, len(reqs), resendBurst)
		v.Tick(t0.Add(2 * time.Second))
		require.LessOrEqual(t, len(reqs), 2*resendBurst)
	})
	t.Run("resent block that does not link", func(t *testing.T) {
		// Same log_id, same seqs, other content: its prev is not the hash of envs[1].
		fork := newTestStream(t, k, origin)
		fork.st.LogID = s.st.LogID
		fork.seal(append([]reading.Record{fork.genesisRec()}, readingRecs(2, 77)...)...)
		fork.seal(readingRecs(3, 1000)...)
		fe := fork.seal(readingRecs(3, 2000)...)
		require.Equal(t, envs[2].FirstSeq, fe.FirstSeq)
		v2, _ := newVerifier(t, Options{ReorderWindow: 1}, k)
		feed(v2, s.topic, envs[0], envs[1], envs[3], envs[4], envs[5])
		v2.Add(t0.Add(time.Minute), s.topic, fe.Bytes)
		sum := v2.Finish()
		require.Contains(t, kinds(sum), KindChainBreak)
		require.Contains(t, kinds(sum), KindGapUndeclared)
	})
}

func TestTruncationAndSuperseded(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(3, 1) // last record at t0 + 2000 s
	last := t0.Add(2000 * time.Second)
	for _, tc := range []struct {
		until time.Time
		hb    time.Duration
		want  []string
	}{
		{last.Add(59 * time.Second), 0, nil},
		{last.Add(61 * time.Second), 0, []string{KindTruncated}},
		{last.Add(61 * time.Second), time.Minute, nil},
		{last.Add(time.Hour), -1, nil},
	} {
		v, _ := newVerifier(t, Options{Until: tc.until, Heartbeat: tc.hb}, k)
		feed(v, s.topic, envs...)
		sum := v.Finish()
		require.Equal(t, tc.want, kinds(sum), "until %s heartbeat %s", tc.until, tc.hb)
		require.Equal(t, tc.want == nil, sum.Clean())
	}

	// A new log whose genesis names this one: the old log is not truncated.
	n := newTestStream(t, k, origin)
	lastSeq := envs[2].LastSeq()
	lastHash := seal.Hash(envs[2].Bytes)
	g := reading.Record{Kind: reading.KindGenesis, Time: last.UnixNano(), Body: &reading.GenesisBody{
		Reason: reading.ReasonBufferLost, Kid: k.Kid[:], PrevLogID: s.st.LogID[:], PrevLastSeq: &lastSeq, PrevLastHash: lastHash[:]}}
	ne := n.seal(g, reading.Record{Kind: reading.KindHeartbeat, Time: last.Add(time.Hour).UnixNano(), Body: &reading.HeartbeatBody{}})
	v, _ := newVerifier(t, Options{Until: last.Add(time.Hour)}, k)
	feed(v, s.topic, envs...)
	feed(v, n.topic, ne)
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
}

func TestKeysFile(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	p1, err := seal.PublicKeyPEM(k1.Public)
	require.NoError(t, err)
	p2, err := seal.PublicKeyPEM(k2.Public)
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.pem")
	require.NoError(t, os.WriteFile(path, append(append([]byte("# gateway gw1\n"), p1...), p2...), 0o644))
	keys, err := LoadKeysFile(path)
	require.NoError(t, err)
	require.Equal(t, []ed25519.PublicKey{k1.Public, k2.Public}, keys)

	require.NoError(t, os.WriteFile(path, []byte("nothing"), 0o644))
	_, err = LoadKeysFile(path)
	require.ErrorContains(t, err, "no PEM")
	require.NoError(t, os.WriteFile(path, append(p1, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")...), 0o644))
	_, err = LoadKeysFile(path)
	require.ErrorContains(t, err, "block 2")
	_, err = LoadKeysFile(filepath.Join(dir, "missing"))
	require.Error(t, err)
}

// TestResendPastRetention: the agent no longer has the start of the gap. It seals a gap-seq
// (expired) naming the hash of the last block it lost, and resends the rest; the verifier
// follows the chain across the expired part, fills the rest, and the gap is declared.
func TestResendPastRetention(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(6, 3) // envs[2..4] missing; envs[2] expired at the agent
	v, _ := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs[0], envs[1], envs[5])
	v.Tick(t0.Add(time.Minute))
	require.Equal(t, uint64(1), v.Summary().GapsUndeclared)
	expired := reading.Record{Kind: reading.KindGapSeq, Time: t0.UnixNano(), Body: &reading.GapSeqBody{
		First: envs[2].FirstSeq, Last: envs[2].LastSeq(), Reason: reading.ReasonExpired, LastHash: func() []byte { h := seal.Hash(envs[2].Bytes); return h[:] }()}}
	feed(v, s.topic, envs[4], envs[3]) // resent, out of order: they wait inside the gap
	require.Equal(t, 2, v.Summary().Waiting)
	feed(v, s.topic, s.seal(expired))
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Equal(t, []string{KindGapFilled, KindGapDeclared}, kinds(sum))
	require.Equal(t, envs[3].FirstSeq, sum.Findings[0].First)
	f := findingOf(t, sum, KindGapDeclared)
	require.Equal(t, envs[2].FirstSeq, f.First)
	require.Equal(t, envs[2].LastSeq(), f.Last)
	require.Equal(t, uint64(1), sum.GapsDeclared)
	require.Equal(t, uint64(6), sum.Blocks)
}
