package verify

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// recorded is a stream as an agent publishes it: a genesis block, then blocks of readings
// 10 s apart, with a heartbeat at the end. Record times and receive times agree.
type recorded struct {
	key  *seal.Key
	s    *testStream
	envs []reading.Envelope
	end  time.Time // the last record's time
}

const mutHeartbeat = 10 * time.Second

func recordStream(t *testing.T, key *seal.Key, origin string, n int) *recorded {
	t.Helper()
	s := newTestStream(t, key, origin)
	r := &recorded{key: key, s: s}
	r.envs = append(r.envs, s.seal(s.genesisRec()))
	for i := 1; i < n; i++ {
		at := t0.Add(time.Duration(i) * mutHeartbeat)
		recs := make([]reading.Record, 3)
		for j := range recs {
			recs[j] = reading.Reading{Tag: "kiln1.co2", Value: reading.NewValue(int64(100*i+j), -1), HasValue: true, Unit: "%vol",
				Time: at.UnixNano() + int64(j), TimeSource: reading.TimeGateway}.Record()
		}
		if i == n-1 {
			recs = append(recs, reading.Record{Kind: reading.KindHeartbeat, Time: at.UnixNano() + 5, Body: &reading.HeartbeatBody{}})
		}
		r.envs = append(r.envs, s.seal(recs...))
		r.end = time.Unix(0, at.UnixNano()+5)
	}
	return r
}

type msg struct {
	topic string
	env   []byte
}

func (r *recorded) msgs(envs ...reading.Envelope) []msg {
	out := make([]msg, len(envs))
	for i, e := range envs {
		out[i] = msg{r.s.topic, e.Bytes}
	}
	return out
}

// resign signs env's payload again with key (the same block, another signer).
func resign(t *testing.T, env []byte, key *seal.Key) []byte {
	t.Helper()
	sg, err := seal.Parse(env)
	require.NoError(t, err)
	out, err := key.Sign(sg.Payload, seal.ContentTypeBlock)
	require.NoError(t, err)
	return out
}

// TestMutations feeds the verifier a recorded stream altered in each way an attacker or a
// lossy path could alter it, and checks the classification: the findings (sorted by kind)
// and the counters that matter. The clean stream gives no finding at all.
func TestMutations(t *testing.T) {
	k, other, trusted2 := newKey(t), newKey(t), newKey(t)
	const n = 10
	r := recordStream(t, k, origin, n)
	e := r.envs
	mid := 5 // the block the mutations touch

	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	without := func(i int) []msg { return r.msgs(slices.Delete(slices.Clone(e), i, i+1)...) }
	replaced := func(i int, env []byte) []msg {
		m := r.msgs(e...)
		m[i].env = env
		return m
	}

	payloadFlip := func() []byte {
		i := bytes.Index(e[mid].Bytes, []byte("kiln1.co2"))
		require.Positive(t, i)
		return flip(e[mid].Bytes, i+3)
	}()
	sigFlip := flip(e[mid].Bytes, len(e[mid].Bytes)-7)

	// Another origin of the same gateway and key, spliced into this one's topic.
	pot := recordStream(t, k, "plant1/gw1/pot1", n)

	// An equivocating pair: a fork of the stream at mid, signed with the real key.
	fork := *r.s
	fork.st.NextSeq, fork.st.LastHash = e[mid].FirstSeq, seal.Hash(e[mid-1].Bytes)
	equiv := fork.seal(readingRecs(3, 99)...)
	require.Equal(t, e[mid].FirstSeq, equiv.FirstSeq)

	// Forged gap-seq records declaring the dropped block mid: (a) signed with another key in
	// place of the real next block; (b) signed with the real key but naming a last hash that
	// does not link to the block after the gap.
	gapSeq := func(dropped reading.Envelope, lastHash [32]byte) reading.Record {
		return reading.Record{Kind: reading.KindGapSeq, Time: r.end.UnixNano(), Body: &reading.GapSeqBody{
			First: dropped.FirstSeq, Last: dropped.LastSeq(), Reason: reading.ReasonBufferFull, LastHash: lastHash[:]}}
	}
	forgedOther := func() []byte {
		f := *r.s
		f.sealer = seal.NewSealer(other, 1)
		f.st.NextSeq, f.st.LastHash = e[mid+1].FirstSeq, seal.Hash(e[mid].Bytes)
		return f.seal(append(readingRecs(3, 500), gapSeq(e[mid], seal.Hash(e[mid].Bytes)))...).Bytes
	}()
	badLink := func() []msg {
		f := recordStream(t, k, origin, mid+1) // same shape up to mid, another log
		s := f.s
		wrong := seal.Hash(f.envs[mid].Bytes)
		wrong[0] ^= 0xff
		after := s.seal(append(readingRecs(3, 600), gapSeq(f.envs[mid], wrong))...)
		last := s.seal(reading.Record{Kind: reading.KindHeartbeat, Time: r.end.UnixNano(), Body: &reading.HeartbeatBody{}})
		msgs := f.msgs(f.envs[:mid]...)
		return append(msgs, f.msgs(after, last)...)
	}()

	swapped := r.msgs(e...)
	swapped[mid], swapped[mid+1] = swapped[mid+1], swapped[mid]
	dup := r.msgs(e...)
	dup = slices.Insert(dup, mid+2, dup[mid])
	spliced := r.msgs(e...)
	spliced = slices.Insert(spliced, mid, msg{r.s.topic, pot.envs[mid].Bytes})
	withEquiv := r.msgs(e...)
	withEquiv = slices.Insert(withEquiv, mid+1, msg{r.s.topic, equiv.Bytes})

	for _, tc := range []struct {
		name       string
		msgs       []msg
		want       []string // finding kinds, sorted
		undeclared uint64
		dups       uint64
	}{
		{name: "clean", msgs: r.msgs(e...)},
		{name: "payload bit", msgs: replaced(mid, payloadFlip), want: []string{KindBadSignature, KindGapUndeclared}, undeclared: 1},
		{name: "signature bit", msgs: replaced(mid, sigFlip), want: []string{KindBadSignature, KindGapUndeclared}, undeclared: 1},
		{name: "dropped block", msgs: without(mid), want: []string{KindGapUndeclared}, undeclared: 1},
		{name: "swapped blocks", msgs: swapped}, // reordered in transit: the window restores the order
		{name: "duplicated block", msgs: dup, dups: 1},
		{name: "truncated tail", msgs: r.msgs(e[:n-3]...), want: []string{KindTruncated}},
		{name: "re-signed, untrusted key", msgs: replaced(mid, resign(t, e[mid].Bytes, other)), want: []string{KindGapUndeclared, KindUnknownKey}, undeclared: 1},
		{name: "re-signed, trusted key not in force", msgs: replaced(mid, resign(t, e[mid].Bytes, trusted2)), want: []string{KindGapUndeclared, KindWrongKey}, undeclared: 1},
		{name: "spliced from another origin", msgs: spliced, want: []string{KindTopicMismatch}},
		{name: "equivocating pair", msgs: withEquiv, want: []string{KindEquivocation}},
		{name: "forged gap-seq, other key", msgs: replaced(mid+1, forgedOther)[:mid+2], want: []string{KindGapUndeclared, KindTruncated, KindUnknownKey}, undeclared: 1},
		{name: "forged gap-seq, last hash does not link", msgs: badLink, want: []string{KindChainBreak, KindGapDeclared}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "forged gap-seq, other key" {
				tc.msgs = slices.Delete(tc.msgs, mid, mid+1) // the real block mid is gone
			}
			v, _ := newVerifier(t, Options{Until: r.end, Heartbeat: mutHeartbeat}, k, trusted2)
			for i, m := range tc.msgs {
				v.Add(t0.Add(time.Duration(i)*time.Second), m.topic, m.env)
			}
			sum := v.Finish()
			got := kinds(sum)
			slices.Sort(got)
			require.Equal(t, tc.want, got, "%v", sum.Findings)
			require.Equal(t, tc.undeclared, sum.GapsUndeclared)
			require.Equal(t, tc.dups, sum.Duplicates)
			require.Equal(t, len(tc.want) == 0, sum.Clean())
			for _, f := range sum.Findings {
				if f.Kind != KindGapUndeclared && f.Kind != KindGapDeclared && f.Kind != KindTruncated {
					require.NotEmpty(t, f.Detail)
				}
			}
		})
	}
}
