package verify

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testStream builds a real signed stream.
type testStream struct {
	t      *testing.T
	sealer *seal.Sealer
	st     seal.Stream
	topic  string
}

func newTestStream(t *testing.T, key *seal.Key, origin string) *testStream {
	t.Helper()
	var id [16]byte
	_, err := rand.Read(id[:])
	require.NoError(t, err)
	return &testStream{
		t:      t,
		sealer: seal.NewSealer(key, 1),
		st:     seal.Stream{Name: "s", Origin: origin, LogID: id},
		topic:  "mrv/v1/" + origin + "/blocks",
	}
}

func newKey(t *testing.T) *seal.Key {
	t.Helper()
	k, err := seal.GenerateKey()
	require.NoError(t, err)
	return k
}

func readingRecs(n int, base int64) []reading.Record {
	recs := make([]reading.Record, n)
	for i := range recs {
		recs[i] = reading.Reading{
			Tag: "kiln1.co2", Value: reading.NewValue(base+int64(i), -1), HasValue: true, Unit: "%vol",
			Time: t0.UnixNano() + (base+int64(i))*int64(time.Second), TimeSource: reading.TimeGateway,
		}.Record()
	}
	return recs
}

func (s *testStream) genesisRec() reading.Record {
	kid := s.sealer.Key().Kid
	return reading.Record{Kind: reading.KindGenesis, Time: t0.UnixNano(), Body: &reading.GenesisBody{Reason: reading.ReasonNewLog, Kid: kid[:]}}
}

// seal seals recs at the stream's head.
func (s *testStream) seal(recs ...reading.Record) reading.Envelope {
	s.t.Helper()
	e, err := s.sealer.Seal(&s.st, recs)
	require.NoError(s.t, err)
	return e
}

// blocks seals a genesis block (genesis + 2 readings) and n-1 blocks of per readings each.
func (s *testStream) blocks(n, per int) []reading.Envelope {
	s.t.Helper()
	out := []reading.Envelope{s.seal(append([]reading.Record{s.genesisRec()}, readingRecs(2, 0)...)...)}
	for i := 1; i < n; i++ {
		out = append(out, s.seal(readingRecs(per, int64(i*1000))...))
	}
	return out
}

// collector records OnReading calls.
type collector struct{ got []ReadingOut }

func (c *collector) on(r ReadingOut) { c.got = append(c.got, r) }

func newVerifier(t *testing.T, opts Options, keys ...*seal.Key) (*Verifier, *collector) {
	t.Helper()
	c := &collector{}
	for _, k := range keys {
		opts.Keys = append(opts.Keys, k.Public)
	}
	if opts.OnReading == nil {
		opts.OnReading = c.on
	}
	v, err := New(opts)
	require.NoError(t, err)
	return v, c
}

// feed adds envelopes one second apart starting at t0.
func feed(v *Verifier, topic string, envs ...reading.Envelope) {
	for i, e := range envs {
		v.Add(t0.Add(time.Duration(i)*time.Second), topic, e.Bytes)
	}
}

func kinds(s Summary) []string {
	var k []string
	for _, f := range s.Findings {
		k = append(k, f.Kind)
	}
	return k
}

func findingOf(t *testing.T, s Summary, kind string) Finding {
	t.Helper()
	for _, f := range s.Findings {
		if f.Kind == kind {
			return f
		}
	}
	require.Failf(t, "finding missing", "no %s finding in %v", kind, s.Findings)
	return Finding{}
}

func requireSeqOrder(t *testing.T, got []ReadingOut) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		require.Less(t, got[i-1].Seq, got[i].Seq, "readings in seq order at %d", i)
	}
}
