package buffer

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetentionByAge(t *testing.T) {
	clk := newClock()
	s := open(t, dbPath(t), Options{Retain: time.Hour, Now: clk.Now})
	p, u := newChain("p", 0, 100), newChain("u", 0, 100)
	t0 := clk.Now()

	require.NoError(t, s.Commit(tick([]*chain{p, u}, p.block(1), p.block(1), u.block(1))))
	clk.Advance(30 * time.Minute)
	require.NoError(t, s.Commit(tick([]*chain{p}, p.block(1))))
	s.MarkPublished("p", 2)

	clk.Advance(45 * time.Minute) // blocks 0 and 1 of p are 75 min old, block 2 is 45 min old
	require.NoError(t, s.Commit(Tick{}))
	got, err := s.Next("p", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{2}, seqs(got), "published and older than Retain: deleted")
	got, err = s.Next("u", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{0}, seqs(got), "unpublished blocks are never aged out")
	st := s.Stats()
	require.Equal(t, StreamStats{Blocks: 1, Unpublished: 1, OldestUnpublished: t0}, st.Streams["u"])
	require.Equal(t, StreamStats{Blocks: 1}, st.Streams["p"])
	require.Equal(t, int64(2*(blockHeaderLen+100)), st.LiveBytes)
	require.Empty(t, s.TakeDropped())

	clk.Advance(time.Hour)
	require.NoError(t, s.Commit(Tick{}))
	require.Equal(t, 0, s.Stats().Streams["p"].Blocks)
	require.Equal(t, 1, s.Stats().Streams["u"].Blocks)
}

func TestRetentionByMaxBytes(t *testing.T) {
	const size = blockHeaderLen + 100
	clk := newClock()
	path := dbPath(t)
	opts := Options{MaxBytes: 5 * size, Now: clk.Now, Logger: testLogger(t)}
	s, err := Open(path, opts)
	require.NoError(t, err)
	a, b, c := newChain("a", 0, 100), newChain("b", 0, 100), newChain("c", 0, 100)
	hash := func(ch *chain, seq uint64) [32]byte { return sha256.Sum256(mustPayload(t, ch, seq)) }
	commit := func(chains []*chain, n map[*chain]int) {
		t.Helper()
		tk := Tick{Heads: map[string]Head{}}
		for _, ch := range chains {
			for range n[ch] {
				tk.Blocks = append(tk.Blocks, ch.block(1))
			}
			tk.Heads[ch.stream] = ch.head
		}
		require.NoError(t, s.Commit(tk))
		clk.Advance(time.Second)
	}
	blocks := func(stream string) []uint64 {
		t.Helper()
		got, err := s.Next(stream, 0, 100)
		require.NoError(t, err)
		return seqs(got)
	}

	commit([]*chain{a, b}, map[*chain]int{a: 1, b: 1}) // a0 b0
	commit([]*chain{a, b}, map[*chain]int{a: 1, b: 1}) // a1 b1
	s.MarkPublished("a", 1)
	commit([]*chain{a}, map[*chain]int{a: 1}) // a2: exactly at the cap
	require.Equal(t, int64(5*size), s.Stats().LiveBytes)

	commit([]*chain{b}, map[*chain]int{b: 2}) // b2 b3: over by 2, published a0 a1 go first
	require.Equal(t, []uint64{2}, blocks("a"))
	require.Equal(t, []uint64{0, 1, 2, 3}, blocks("b"))
	require.Empty(t, s.TakeDropped())
	require.Equal(t, int64(5*size), s.Stats().LiveBytes)

	commit([]*chain{b}, map[*chain]int{b: 2}) // b4 b5: nothing published left, the oldest unpublished go
	require.Equal(t, []uint64{2}, blocks("a"))
	require.Equal(t, []uint64{2, 3, 4, 5}, blocks("b"))
	require.Equal(t, []Dropped{{Stream: "b", FirstSeq: 0, LastSeq: 1, LastHash: hash(b, 1)}}, s.TakeDropped())
	require.Equal(t, uint64(2), s.Stats().Dropped)

	// A tick alone bigger than the cap: everything older goes, the tick itself stays (soft cap).
	commit([]*chain{c}, map[*chain]int{c: 6})
	require.Empty(t, blocks("a"))
	require.Empty(t, blocks("b"))
	require.Equal(t, []uint64{0, 1, 2, 3, 4, 5}, blocks("c"))
	require.Equal(t, int64(6*size), s.Stats().LiveBytes)
	require.NoError(t, s.Close()) // not taken yet: persisted for the next start

	s, err = Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	require.Equal(t, []Dropped{
		{Stream: "a", FirstSeq: 2, LastSeq: 2, LastHash: hash(a, 2)},
		{Stream: "b", FirstSeq: 2, LastSeq: 5, LastHash: hash(b, 5)},
	}, s.TakeDropped())
	require.Equal(t, int64(6*size), s.Stats().LiveBytes, "live bytes recomputed at open")
	heads := s.Heads()
	require.Equal(t, uint64(6), heads["b"].NextSeq, "heads are not rewound by drops")
	require.Equal(t, uint64(2), heads["a"].Published)
}
