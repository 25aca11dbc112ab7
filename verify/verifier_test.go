package verify

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

const origin = "plant1/gw1/kiln1"

func TestNewOptions(t *testing.T) {
	_, err := New(Options{})
	require.ErrorContains(t, err, "no trusted public key")
	_, err = New(Options{Keys: []ed25519.PublicKey{make([]byte, 5)}})
	require.ErrorContains(t, err, "5 bytes")
	_, err = New(Options{Keys: nil, TOFU: true, ReorderWindow: -1})
	require.Error(t, err)
	v, err := New(Options{TOFU: true})
	require.NoError(t, err)
	require.True(t, v.Finish().Clean())
}

func TestCleanStream(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(5, 10)
	v, c := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs...)
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Empty(t, sum.Findings)
	require.Equal(t, uint64(5), sum.Blocks)
	require.Equal(t, uint64(2+4*10), sum.Readings)
	require.Len(t, c.got, 42)
	requireSeqOrder(t, c.got)
	require.Equal(t, uint64(1), c.got[0].Seq, "seq 0 is the genesis record")
	require.Equal(t, origin, c.got[0].Origin)
	require.Equal(t, s.st.LogID, c.got[0].LogID)
	require.Equal(t, "0.1", c.got[1].Reading.Value.String())
	require.Equal(t, sum, v.Finish(), "Finish is idempotent")
}

func TestDuplicate(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(4, 3)
	v, c := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs[0], envs[1], envs[1], envs[2], envs[0], envs[3], envs[3])
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Equal(t, uint64(3), sum.Duplicates)
	require.Equal(t, uint64(4), sum.Blocks)
	require.Len(t, c.got, 2+3*3)

	// A duplicate while it is still waiting in the reorder window.
	v2, _ := newVerifier(t, Options{}, k)
	feed(v2, s.topic, envs[0], envs[2], envs[2], envs[1], envs[3])
	sum = v2.Finish()
	require.True(t, sum.Clean())
	require.Equal(t, uint64(1), sum.Duplicates)
}

func TestReorderWithinWindow(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(6, 3)
	v, c := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs[1], envs[0], envs[3], envs[4], envs[2], envs[5])
	sum := v.Summary()
	require.Equal(t, uint64(6), sum.Blocks, "all accepted before Finish")
	require.Zero(t, sum.Waiting)
	sum = v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Empty(t, sum.Findings)
	requireSeqOrder(t, c.got)
	require.Len(t, c.got, 2+5*3)
}

func TestDroppedBlockIsUndeclaredGap(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(5, 3)
	dropped := envs[2]

	t.Run("flushed by Finish", func(t *testing.T) {
		v, c := newVerifier(t, Options{}, k)
		feed(v, s.topic, envs[0], envs[1], envs[3], envs[4])
		require.Equal(t, 2, v.Summary().Waiting)
		sum := v.Finish()
		require.False(t, sum.Clean())
		require.Equal(t, uint64(1), sum.GapsUndeclared)
		require.Zero(t, sum.Failures)
		require.Equal(t, uint64(4), sum.Blocks)
		f := findingOf(t, sum, KindGapUndeclared)
		require.Equal(t, dropped.FirstSeq, f.First)
		require.Equal(t, dropped.LastSeq(), f.Last)
		require.Equal(t, origin, f.Origin)
		requireSeqOrder(t, c.got)
	})
	t.Run("reorder timeout on receive time", func(t *testing.T) {
		v, _ := newVerifier(t, Options{ReorderTimeout: 5 * time.Second}, k)
		v.Add(t0, s.topic, envs[0].Bytes)
		v.Add(t0, s.topic, envs[1].Bytes)
		v.Add(t0.Add(time.Second), s.topic, envs[3].Bytes)
		require.Zero(t, v.Summary().GapsUndeclared)
		v.Tick(t0.Add(6 * time.Second))
		sum := v.Summary()
		require.Equal(t, uint64(1), sum.GapsUndeclared)
		require.Equal(t, uint64(3), sum.Blocks)
		// The missing block, arriving after the verifier moved on (resent), links on both
		// sides and fills the gap.
		v.Add(t0.Add(7*time.Second), s.topic, dropped.Bytes)
		v.Add(t0.Add(7*time.Second), s.topic, envs[4].Bytes)
		sum = v.Finish()
		require.Equal(t, []string{KindGapFilled}, kinds(sum))
		require.True(t, sum.Clean())
		require.Equal(t, uint64(1), sum.GapsFilled)
		require.Equal(t, uint64(5), sum.Blocks)
	})
	t.Run("window overflow", func(t *testing.T) {
		v, _ := newVerifier(t, Options{ReorderWindow: 1}, k)
		feed(v, s.topic, envs[0], envs[1], envs[3])
		require.Zero(t, v.Summary().GapsUndeclared)
		feed(v, s.topic, envs[4])
		// envs[4] fits right after envs[3]; only the overflow at 2 waiting triggers the skip.
		sum := v.Summary()
		require.Equal(t, uint64(1), sum.GapsUndeclared)
		require.Equal(t, uint64(4), sum.Blocks)
	})
}

func TestDeclaredGap(t *testing.T) {
	k := newKey(t)
	for _, tc := range []struct {
		name      string
		wrongHash bool
	}{{"chain followed across the gap", false}, {"wrong last hash", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStream(t, k, origin)
			envs := s.blocks(4, 3) // envs[2] will be dropped
			dropped := envs[2]
			lastHash := seal.Hash(dropped.Bytes)
			if tc.wrongHash {
				lastHash[0] ^= 1
			}
			gap := reading.Record{Kind: reading.KindGapSeq, Time: t0.UnixNano(), Body: &reading.GapSeqBody{
				First: dropped.FirstSeq, Last: dropped.LastSeq(), Reason: reading.ReasonBufferFull, LastHash: lastHash[:]}}
			envs = append(envs, s.seal(append(readingRecs(2, 9000), gap)...), s.seal(readingRecs(2, 9100)...))

			v, c := newVerifier(t, Options{}, k)
			feed(v, s.topic, envs[0], envs[1], envs[3], envs[4], envs[5])
			sum := v.Finish()
			require.Equal(t, uint64(1), sum.GapsDeclared)
			require.Zero(t, sum.GapsUndeclared)
			f := findingOf(t, sum, KindGapDeclared)
			require.Equal(t, dropped.FirstSeq, f.First)
			require.Equal(t, dropped.LastSeq(), f.Last)
			requireSeqOrder(t, c.got)
			if tc.wrongHash {
				require.False(t, sum.Clean())
				require.Equal(t, uint64(1), sum.Failures)
				f := findingOf(t, sum, KindChainBreak)
				require.Equal(t, dropped.LastSeq()+1, f.First)
			} else {
				require.True(t, sum.Clean(), "%v", sum.Findings)
			}
		})
	}
}

func TestPartlyDeclaredGap(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(5, 3) // envs[2], envs[3] dropped; only envs[2] declared
	gap := reading.Record{Kind: reading.KindGapSeq, Time: t0.UnixNano(), Body: &reading.GapSeqBody{
		First: envs[2].FirstSeq, Last: envs[2].LastSeq(), Reason: reading.ReasonBufferFull}}
	envs = append(envs, s.seal(gap))
	v, _ := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs[0], envs[1], envs[4], envs[5])
	sum := v.Finish()
	require.Equal(t, uint64(1), sum.GapsUndeclared)
	f := findingOf(t, sum, KindGapUndeclared)
	require.Contains(t, f.Detail, "not declared")
}

func TestTamperedBlock(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(3, 3)
	payloadFlip := bytes.Clone(envs[1].Bytes)
	i := bytes.Index(payloadFlip, []byte("kiln1.co2"))
	require.Positive(t, i)
	payloadFlip[i] ^= 0x01
	sigFlip := bytes.Clone(envs[1].Bytes)
	sigFlip[len(sigFlip)-1] ^= 0x80
	for name, bad := range map[string][]byte{"payload": payloadFlip, "signature": sigFlip} {
		t.Run(name, func(t *testing.T) {
			v, c := newVerifier(t, Options{}, k)
			v.Add(t0, s.topic, envs[0].Bytes)
			v.Add(t0, s.topic, bad)
			v.Add(t0, s.topic, envs[1].Bytes) // the genuine block still arrives
			v.Add(t0, s.topic, envs[2].Bytes)
			sum := v.Finish()
			require.False(t, sum.Clean())
			require.Equal(t, uint64(1), sum.Failures)
			require.Equal(t, []string{KindBadSignature}, kinds(sum))
			require.Equal(t, uint64(3), sum.Blocks)
			require.Len(t, c.got, 2+2*3)
		})
	}
	t.Run("garbage", func(t *testing.T) {
		v, _ := newVerifier(t, Options{}, k)
		v.Add(t0, s.topic, []byte("not cbor"))
		v.Add(t0, s.topic, nil)
		v.Add(t0, s.topic, envs[0].Bytes[:len(envs[0].Bytes)-3])
		sum := v.Finish()
		require.Equal(t, []string{KindBadEnvelope, KindBadEnvelope, KindBadEnvelope}, kinds(sum))
		require.Equal(t, uint64(3), sum.Failures)
	})
}

func TestUnknownKey(t *testing.T) {
	k, other := newKey(t), newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(3, 3)
	// The same block re-signed with another key.
	forged := s.st
	forged.NextSeq, forged.LastHash = envs[1].FirstSeq, seal.Hash(envs[0].Bytes)
	fs := seal.NewSealer(other, 1)
	fe, err := fs.Seal(&forged, readingRecs(3, 1000))
	require.NoError(t, err)

	v, _ := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs[0], fe, envs[1], envs[2])
	sum := v.Finish()
	require.Equal(t, []string{KindUnknownKey}, kinds(sum))
	require.Equal(t, uint64(1), sum.Failures)
	require.Equal(t, uint64(3), sum.Blocks)
}

func TestTopicMismatch(t *testing.T) {
	k := newKey(t)
	kiln := newTestStream(t, k, origin)
	pot := newTestStream(t, k, "plant1/gw1/pot1")
	kenvs, penvs := kiln.blocks(2, 3), pot.blocks(2, 3)
	v, _ := newVerifier(t, Options{}, k)
	feed(v, kiln.topic, kenvs[0], penvs[1], kenvs[1])
	v.Add(t0, "mrv/v1/plant1/gw1/Bad/blocks", kenvs[0].Bytes)
	v.Add(t0, "other/topic", kenvs[0].Bytes)
	sum := v.Finish()
	require.Equal(t, []string{KindTopicMismatch, KindBadTopic}, kinds(sum))
	require.Equal(t, origin, sum.Findings[0].Origin)
	require.Contains(t, sum.Findings[0].Detail, "plant1/gw1/pot1")
	require.Equal(t, uint64(2), sum.Blocks)
	require.Equal(t, uint64(1), sum.Ignored)
}

func TestChainBreak(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(2, 3)
	s.st.LastHash[3] ^= 1
	envs = append(envs, s.seal(readingRecs(2, 5000)...))
	v, _ := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs...)
	sum := v.Finish()
	require.Equal(t, []string{KindChainBreak}, kinds(sum))
	require.Equal(t, envs[2].FirstSeq, sum.Findings[0].First)
}

func TestJoinedMidway(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(5, 3)
	v, c := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs[3], envs[2], envs[4])
	require.Zero(t, v.Summary().Blocks, "a log's first block waits for seq 0 within the window")
	v.Tick(t0.Add(time.Minute))
	require.Equal(t, uint64(3), v.Summary().Blocks, "joined at the reorder timeout")
	v.Add(t0.Add(time.Minute), s.topic, envs[1].Bytes) // from before the join: cannot be checked
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Equal(t, []string{KindJoined, KindLate}, kinds(sum))
	require.Equal(t, envs[2].FirstSeq, sum.Findings[0].First)
	require.Equal(t, uint64(3), sum.Blocks)
	requireSeqOrder(t, c.got)
	v.Add(t0, s.topic, envs[0].Bytes) // after Finish: ignored
	require.Equal(t, sum, v.Summary())
}

func TestEquivocation(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(2, 3)
	fork := *s
	a := s.seal(readingRecs(3, 7000)...)
	b := fork.seal(readingRecs(3, 7001)...)
	require.Equal(t, a.FirstSeq, b.FirstSeq)
	next := s.seal(readingRecs(1, 8000)...)

	dir := t.TempDir()
	v, _ := newVerifier(t, Options{EvidenceDir: dir}, k)
	feed(v, s.topic, envs[0], envs[1], a, b, next, b)
	sum := v.Finish()
	require.Equal(t, []string{KindEquivocation}, kinds(sum), "the repeated conflicting envelope is reported once")
	require.Equal(t, uint64(1), sum.Failures)
	require.Equal(t, uint64(1), sum.Duplicates)
	require.Equal(t, uint64(4), sum.Blocks)

	base := filepath.Join(dir, "plant1_gw1_kiln1-"+sum.Findings[0].LogID+"-"+itoa(a.FirstSeq))
	gotA, err := os.ReadFile(base + "-a.cose")
	require.NoError(t, err)
	require.Equal(t, a.Bytes, gotA)
	gotB, err := os.ReadFile(base + "-b.cose")
	require.NoError(t, err)
	require.Equal(t, b.Bytes, gotB)
	ev := v.Evidence()
	require.Len(t, ev, 1)
	require.Equal(t, a.Bytes, ev[0].A)
	require.Equal(t, b.Bytes, ev[0].B)
	require.Len(t, ev[0].Files, 2)

	// Both arriving ahead of the chain: the first is accepted, the second is the conflict.
	v2, _ := newVerifier(t, Options{}, k)
	feed(v2, s.topic, envs[0], b, a, envs[1], next)
	sum = v2.Finish()
	require.Equal(t, []string{KindEquivocation, KindChainBreak}, kinds(sum), "next chains to a, not b")
}

func itoa(u uint64) string { return strconv.FormatUint(u, 10) }

func TestKeyRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	s := newTestStream(t, k1, origin)
	envs := s.blocks(2, 3)
	rot := reading.Record{Kind: reading.KindKeyRotation, Time: t0.UnixNano(), Body: &reading.KeyRotationBody{Kid: k2.Kid[:], PublicKey: k2.Public}}
	envs = append(envs, s.seal(append(readingRecs(2, 3000), rot)...))
	old := *s // a fork that keeps signing with the old key after the rotation point
	old.sealer = seal.NewSealer(k1, 1)
	s.sealer.SetKey(k2)
	envs = append(envs, s.seal(readingRecs(3, 4000)...), s.seal(readingRecs(3, 5000)...))
	stale := old.seal(readingRecs(3, 4000)...)

	t.Run("followed given only the first key", func(t *testing.T) {
		v, c := newVerifier(t, Options{}, k1)
		feed(v, s.topic, envs...)
		sum := v.Finish()
		require.True(t, sum.Clean(), "%v", sum.Findings)
		require.Equal(t, uint64(5), sum.Blocks)
		requireSeqOrder(t, c.got)
	})
	t.Run("reordered across the rotation", func(t *testing.T) {
		v, _ := newVerifier(t, Options{}, k1)
		feed(v, s.topic, envs[0], envs[1], envs[4], envs[3], envs[2])
		sum := v.Finish()
		require.True(t, sum.Clean(), "%v", sum.Findings)
		require.Equal(t, uint64(5), sum.Blocks)
	})
	t.Run("old key after the rotation point", func(t *testing.T) {
		require.Equal(t, envs[3].FirstSeq, stale.FirstSeq)
		v, _ := newVerifier(t, Options{}, k1)
		feed(v, s.topic, envs[0], envs[1], envs[2], stale, envs[3], envs[4])
		sum := v.Finish()
		require.Equal(t, []string{KindWrongKey}, kinds(sum))
		require.Equal(t, uint64(5), sum.Blocks)
	})
	t.Run("second key alone is unknown", func(t *testing.T) {
		v, _ := newVerifier(t, Options{}, k2)
		feed(v, s.topic, envs...)
		sum := v.Finish()
		require.False(t, sum.Clean())
		require.Contains(t, kinds(sum), KindUnknownKey)
	})
}

func TestTOFU(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(3, 2)
	statusPayload, err := reading.Marshal(map[uint64]any{0: uint64(1), 1: k.Kid[:], 2: []byte(k.Public)})
	require.NoError(t, err)
	status, err := k.Sign(statusPayload, seal.ContentTypeStatus)
	require.NoError(t, err)

	v, _ := newVerifier(t, Options{TOFU: true})
	feed(v, s.topic, envs[0]) // before the birth message: no key yet
	v.Add(t0, "mrv/v1/plant1/gw1/status", status)
	feed(v, s.topic, envs[1], envs[2])
	sum := v.Finish()
	require.Equal(t, KindUnknownKey, kinds(sum)[0])
	require.Equal(t, uint64(2), sum.Blocks)

	// A later status message under another key is not trusted.
	other := newKey(t)
	p2, err := reading.Marshal(map[uint64]any{0: uint64(2), 2: []byte(other.Public)})
	require.NoError(t, err)
	st2, err := other.Sign(p2, seal.ContentTypeStatus)
	require.NoError(t, err)
	v2, _ := newVerifier(t, Options{TOFU: true})
	v2.Add(t0, "mrv/v1/plant1/gw1/status", status)
	v2.Add(t0, "mrv/v1/plant1/gw1/status", st2)
	feed(v2, s.topic, envs...)
	sum = v2.Finish()
	require.Equal(t, []string{KindStatusKeyChange}, kinds(sum))
	require.True(t, sum.Clean())
	require.Equal(t, uint64(3), sum.Blocks)
}

func TestManyLogsInterleaved(t *testing.T) {
	k := newKey(t)
	a := newTestStream(t, k, origin)
	b := newTestStream(t, k, "plant1/gw1/pot1")
	c := newTestStream(t, k, origin) // a second log of the same origin (new log_id)
	ea, eb, ec := a.blocks(4, 2), b.blocks(4, 2), c.blocks(4, 2)
	v, col := newVerifier(t, Options{}, k)
	for i := range 4 {
		v.Add(t0, a.topic, ea[3-i].Bytes)
		v.Add(t0, b.topic, eb[i].Bytes)
		v.Add(t0, c.topic, ec[i].Bytes)
	}
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Equal(t, uint64(12), sum.Blocks)
	require.Equal(t, 3, sum.Logs)
	require.Len(t, col.got, 3*(2+3*2))
}

func TestLogLimit(t *testing.T) {
	k := newKey(t)
	a := newTestStream(t, k, origin)
	b := newTestStream(t, k, origin)
	v, _ := newVerifier(t, Options{MaxLogs: 1}, k)
	feed(v, a.topic, a.blocks(1, 1)...)
	feed(v, b.topic, b.blocks(1, 1)...)
	sum := v.Finish()
	require.Equal(t, []string{KindLogLimit}, kinds(sum))
}

func TestSummaryJSON(t *testing.T) {
	s := Summary{Blocks: 1, Readings: 2, Duplicates: 3, GapsDeclared: 4, GapsUndeclared: 5, Failures: 6, Findings: []Finding{{Kind: "x"}}}
	j, err := s.JSON()
	require.NoError(t, err)
	require.Equal(t, `{"summary":{"blocks":1,"readings":2,"duplicates":3,"gaps_declared":4,"gaps_undeclared":5,"failures":6}}`, string(j))
	require.False(t, s.Clean())
	require.True(t, Summary{GapsDeclared: 1, Duplicates: 2}.Clean())
}

func TestReadingJSON(t *testing.T) {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600)).UnixNano()
	out := ReadingOut{
		Origin: origin, LogID: [16]byte{0xAB, 0x01}, Seq: 42,
		Reading: reading.Reading{Tag: "kiln1.co2", Value: reading.NewValue(123456, -3), HasValue: true, Unit: "%vol", Time: ts, TimeSource: reading.TimeDevice},
	}
	j, err := ReadingJSON(out)
	require.NoError(t, err)
	require.Equal(t, `{"origin":"plant1/gw1/kiln1","log_id":"ab010000000000000000000000000000","seq":42,"tag":"kiln1.co2","value":"123.456","unit":"%vol","quality":"good","time":"2026-03-01T11:00:00.123456789Z","time_source":"device"}`, string(j))

	out.Reading = reading.Reading{Tag: "kiln1.flow", Unit: "Nm3/h", Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano(),
		TimeSource: reading.TimeGateway, Quality: reading.Quality{Severity: reading.Bad, Flags: reading.FlagCommsLoss | reading.FlagException, Status: 2}, Raw: []byte{0xBE, 0xEF}}
	j, err = ReadingJSON(out)
	require.NoError(t, err)
	require.Equal(t, `{"origin":"plant1/gw1/kiln1","log_id":"ab010000000000000000000000000000","seq":42,"tag":"kiln1.flow","value":null,"unit":"Nm3/h","quality":"bad","time":"2026-03-01T12:00:00Z","time_source":"gateway","flags":"comms-loss|exception","status":2,"raw":"beef"}`, string(j))
}

func TestFindingString(t *testing.T) {
	f := Finding{Kind: KindGapUndeclared, Origin: origin, LogID: "ab", First: 3, Last: 5, Detail: "why"}
	require.Equal(t, "gap-undeclared plant1/gw1/kiln1 log ab seq 3..5: why", f.String())
	require.False(t, f.Failure())
	require.True(t, Finding{Kind: KindEquivocation}.Failure())
}

func FuzzAdd(f *testing.F) {
	k, err := seal.GenerateKey()
	require.NoError(f, err)
	s := &testStream{t: &testing.T{}, sealer: seal.NewSealer(k, 1), st: seal.Stream{Origin: origin, LogID: [16]byte{1}}, topic: "mrv/v1/" + origin + "/blocks"}
	envs := s.blocks(2, 2)
	for _, e := range envs {
		f.Add(e.Bytes)
	}
	f.Add([]byte{0xd2, 0x84})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := New(Options{Keys: []ed25519.PublicKey{k.Public}, TOFU: true})
		require.NoError(t, err)
		v.Add(t0, s.topic, envs[0].Bytes)
		v.Add(t0, s.topic, data)
		v.Add(t0, "mrv/v1/plant1/gw1/status", data)
		sum := v.Finish()
		for _, fd := range sum.Findings {
			require.NotEqual(t, KindInternal, fd.Kind, fd.Detail)
		}
	})
}

func TestWaitingBytesBound(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(3, 3)
	v, _ := newVerifier(t, Options{MaxWaitingBytes: 1}, k)
	feed(v, s.topic, envs[0], envs[2])
	sum := v.Summary()
	require.Zero(t, sum.Waiting, "nothing can wait under a 1-byte bound")
	require.Equal(t, uint64(1), sum.GapsUndeclared)
	feed(v, s.topic, envs[1])
	sum = v.Finish()
	require.Equal(t, []string{KindGapFilled}, kinds(sum))
	require.True(t, sum.Clean())
}

func TestEvidenceInMemory(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(1, 1)
	fork := *s
	a, b := s.seal(readingRecs(1, 1)...), fork.seal(readingRecs(1, 2)...)
	v, _ := newVerifier(t, Options{}, k)
	feed(v, s.topic, envs[0], a, b)
	ev := v.Evidence()
	require.Len(t, ev, 1)
	require.Equal(t, a.FirstSeq, ev[0].Seq)
	require.Equal(t, seal.Hash(a.Bytes), ev[0].AHash)
	require.Equal(t, b.Bytes, ev[0].B)
	require.Nil(t, ev[0].Files)
}
