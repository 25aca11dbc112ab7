package buffer

import (
	"crypto/sha256"
	"slices"
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

// capped is a store with MaxBytes of a few test blocks and a clock that ticks per commit.
type capped struct {
	t    *testing.T
	s    *Store
	clk  *clock
	path string
	opts Options
}

const cappedBlock = blockHeaderLen + 100

func newCapped(t *testing.T, blocks int64) *capped {
	c := &capped{t: t, clk: newClock(), path: dbPath(t)}
	c.opts = Options{MaxBytes: blocks * cappedBlock, Now: c.clk.Now, Logger: testLogger(t)}
	var err error
	c.s, err = Open(c.path, c.opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.s.Close()) })
	return c
}

// commit commits n[ch] new blocks of each chain, in the order of chains.
func (c *capped) commit(chains []*chain, n map[*chain]int) {
	c.t.Helper()
	tk := Tick{Heads: map[string]Head{}}
	for _, ch := range chains {
		for range n[ch] {
			tk.Blocks = append(tk.Blocks, ch.block(1))
		}
		tk.Heads[ch.stream] = ch.head
	}
	require.NoError(c.t, c.s.Commit(tk))
	c.clk.Advance(time.Second)
}

func (c *capped) hash(ch *chain, seq uint64) [32]byte {
	return sha256.Sum256(mustPayload(c.t, ch, seq))
}

// reopen closes the store and opens it again (closed at the end of the test).
func (c *capped) reopen() {
	c.t.Helper()
	require.NoError(c.t, c.s.Close())
	var err error
	c.s, err = Open(c.path, c.opts)
	require.NoError(c.t, err)
}

func TestRetentionByMaxBytes(t *testing.T) {
	const size = cappedBlock
	c := newCapped(t, 5)
	a, b, cc := newChain("a", 0, 100), newChain("b", 0, 100), newChain("c", 0, 100)
	hash, commit := c.hash, c.commit
	blocks := func(stream string) []uint64 {
		t.Helper()
		got, err := c.s.Next(stream, 0, 100)
		require.NoError(t, err)
		return seqs(got)
	}
	s := c.s

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
	commit([]*chain{cc}, map[*chain]int{cc: 6})
	require.Empty(t, blocks("a"))
	require.Empty(t, blocks("b"))
	require.Equal(t, []uint64{0, 1, 2, 3, 4, 5}, blocks("c"))
	require.Equal(t, int64(6*size), s.Stats().LiveBytes)
	c.reopen() // not taken yet: persisted for the next start
	s = c.s
	require.ElementsMatch(t, []Dropped{
		{Stream: "a", FirstSeq: 2, LastSeq: 2, LastHash: hash(a, 2)},
		// b0..b1 were declared already, but b2 (which would carry that declaration) went
		// too: the run continues the last one, so it is declared whole.
		{Stream: "b", FirstSeq: 0, LastSeq: 5, LastHash: hash(b, 5)},
	}, s.TakeDropped())
	require.Equal(t, int64(6*size), s.Stats().LiveBytes, "live bytes recomputed at open")
	heads := s.Heads()
	require.Equal(t, uint64(6), heads["b"].NextSeq, "heads are not rewound by drops")
	require.Equal(t, uint64(2), heads["a"].Published)
}

// TestDroppedRunContinuesDeclaredRun is the case where the block that carries a drop's
// declaration is itself dropped before it is published, across a restart: the new run must
// declare the earlier one too, or those seqs would be missing with no declaration left.
func TestDroppedRunContinuesDeclaredRun(t *testing.T) {
	c := newCapped(t, 3)
	a, b := newChain("a", 0, 100), newChain("b", 0, 100)
	commit := func(ch *chain, n int) { t.Helper(); c.commit([]*chain{ch}, map[*chain]int{ch: n}) }
	dropped := func(ch *chain, first, last uint64) []Dropped {
		return []Dropped{{Stream: ch.stream, FirstSeq: first, LastSeq: last, LastHash: c.hash(ch, last)}}
	}

	commit(a, 3) // a0..a2: at the cap
	commit(a, 2) // a3 a4: a0 a1 dropped
	require.Equal(t, dropped(a, 0, 1), c.s.TakeDropped())
	commit(a, 1) // a5 "carries" the declaration; a2 dropped
	require.Equal(t, dropped(a, 0, 2), c.s.TakeDropped(), "continues a0..a1: declared whole")

	c.reopen()
	commit(a, 1) // a6: a3 dropped, still continuing the run across the restart
	require.Equal(t, dropped(a, 0, 3), c.s.TakeDropped())

	c.s.MarkPublished("a", 4) // a4 published: the next drop does not continue the run
	c.commit([]*chain{b}, map[*chain]int{b: 3})
	// a5 carried the declaration of a0..a1 (the Commit that forgot it stored a5): dropping
	// a5 declares that gap again. (a0..a2 was never taken before the restart's Commit, and
	// a0..a3 was forgot by this Commit, which stores no block of a: nothing carries them.)
	require.ElementsMatch(t, slices.Concat(dropped(a, 5, 6), dropped(a, 0, 1)), c.s.TakeDropped())
	commit(b, 1)
	require.Equal(t, dropped(b, 0, 0), c.s.TakeDropped(), "another stream's run is its own")
}

// TestInFlightBlocksNotDropped: blocks handed to the uplink by NextToPublish may be
// delivered by the broker, so the cap drops the unpublished blocks after them, and a
// gap-seq never declares lost what may arrive.
func TestInFlightBlocksNotDropped(t *testing.T) {
	c := newCapped(t, 4)
	a := newChain("a", 0, 100)
	c.commit([]*chain{a}, map[*chain]int{a: 4}) // a0..a3: at the cap
	got, err := c.s.NextToPublish("a", 0, 2)
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 1}, seqs(got), "a0 a1 in flight")
	c.commit([]*chain{a}, map[*chain]int{a: 2}) // a4 a5: two must go
	require.Equal(t, []Dropped{{Stream: "a", FirstSeq: 2, LastSeq: 3, LastHash: c.hash(a, 3)}}, c.s.TakeDropped())
	got, err = c.s.Next("a", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 1, 4, 5}, seqs(got))

	c.s.MarkPublished("a", 1) // acknowledged: ordinary published blocks again
	c.commit([]*chain{a}, map[*chain]int{a: 2})
	require.Empty(t, c.s.TakeDropped(), "the published a0 a1 went first")
	got, err = c.s.Next("a", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{4, 5, 6, 7}, seqs(got))
}

// TestQuarantineDeclarationDroppedIsReportedAgain: the block that carried a quarantined
// gap's declaration is dropped for MaxBytes before it was published: the quarantined range
// is reported again (and the dropped run as usual).
func TestQuarantineDeclarationDroppedIsReportedAgain(t *testing.T) {
	c := newCapped(t, 4)
	a := newChain("a", 0, 100)
	c.commit([]*chain{a}, map[*chain]int{a: 2}) // a0 a1
	flipPayloadByte(t, c.path, "<a:0:1>")
	got, err := c.s.Next("a", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{1}, seqs(got))
	q := c.s.TakeQuarantined()
	require.Len(t, q, 1)
	c.commit([]*chain{a}, map[*chain]int{a: 1}) // a2 carries the declaration of a0
	require.Empty(t, c.s.TakeQuarantined())
	c.commit([]*chain{a}, map[*chain]int{a: 4}) // a3..a6: a1 a2 dropped
	require.Equal(t, []Dropped{{Stream: "a", FirstSeq: 1, LastSeq: 2, LastHash: c.hash(a, 2)}}, c.s.TakeDropped())
	require.Equal(t, q, c.s.TakeQuarantined(), "declared again")

	c.s.MarkPublished("a", 6)
	c.commit([]*chain{a}, map[*chain]int{a: 1}) // carries a7; a3.. published go first
	c.s.MarkPublished("a", 7)
	c.commit([]*chain{a}, map[*chain]int{a: 4})
	require.Empty(t, c.s.TakeQuarantined(), "its carrying blocks were published: never again")
	require.Empty(t, c.s.TakeDropped())
}
