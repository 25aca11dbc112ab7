package buffer

import (
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/mrv-agent/mrv-agent/reading"
)

// pagesPerValueByte commits ticks of four 25 KB blocks (the shape of a W1 tick) and returns
// the bytes of pages bbolt allocated (dirty pages written) per byte of block value.
func pagesPerValueByte(t *testing.T, s *Store, c *chain, ticks int) float64 {
	t.Helper()
	alloc := func() int64 { st := s.db.Stats(); return st.TxStats.GetPageAlloc() }
	alloc0 := alloc()
	var values int64
	for range ticks {
		var blocks []reading.Envelope
		for range 4 {
			blocks = append(blocks, c.block(1))
		}
		require.NoError(t, s.Commit(tick([]*chain{c}, blocks...)))
		for _, b := range blocks {
			values += int64(blockHeaderLen + len(b.Bytes))
		}
	}
	return float64(alloc()-alloc0) / float64(values)
}

// TestLargeBlocksWrittenOnce: with large values in their own buckets, a tick writes its
// blocks about once; inline (the version-1 layout), the leaf a tick appends to is
// rewritten with the previous ticks' blocks in it.
func TestLargeBlocksWrittenOnce(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	nested := pagesPerValueByte(t, s, newChain("s", 0, 25_000), 50)

	defer func(n int) { nestedMin = n }(nestedMin)
	nestedMin = 1 << 30
	inline := pagesPerValueByte(t, s, newChain("t", 0, 25_000), 50)
	t.Logf("pages written per value byte: nested %.2f, inline %.2f", nested, inline)
	require.Less(t, nested, 1.4)
	require.Greater(t, inline, 2.0, "the case nested values exist for")
}

// TestVersion1FileReadAndContinued opens a version-1 file (every value inline, large ones
// too) and continues it: old and new values are read in order, retention deletes both,
// and the marker becomes 2.
func TestVersion1FileReadAndContinued(t *testing.T) {
	path := dbPath(t)
	clk := newClock()
	opts := Options{Now: clk.Now, Retain: 1, Logger: testLogger(t)}
	big, small := newChain("big", 0, 20_000), newChain("small", 0, 100)

	restore := nestedMin
	nestedMin = 1 << 30
	s, err := Open(path, opts)
	require.NoError(t, err)
	require.NoError(t, s.Commit(tick([]*chain{big, small}, big.block(1), big.block(1), small.block(1))))
	require.NoError(t, s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(metaFormat), []byte{0, 0, 0, 1})
	}))
	require.NoError(t, s.Close())
	nestedMin = restore

	s = open(t, path, Options{Now: clk.Now, Retain: 1})
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		require.Equal(t, []byte{0, 0, 0, 2}, tx.Bucket(bucketMeta).Get([]byte(metaFormat)))
		b := blocksBucket(tx, "big")
		require.NotNil(t, b.Get(seqKey(0)), "version-1 value inline")
		return nil
	}))
	require.NoError(t, s.Commit(tick([]*chain{big, small}, big.block(1), small.block(1))))
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		b := blocksBucket(tx, "big")
		require.Nil(t, b.Get(seqKey(2)), "a new large value is nested")
		require.NotNil(t, b.Bucket(seqKey(2)))
		require.NotNil(t, blocksBucket(tx, "small").Get(seqKey(1)), "a small one stays inline")
		return nil
	}))
	got, err := s.Next("big", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 1, 2}, seqs(got))
	for i, e := range got {
		require.Equal(t, mustPayload(t, big, uint64(i)), e.Bytes)
	}
	st := s.Stats()
	require.Equal(t, int64(3*(blockHeaderLen+20_000)+2*(blockHeaderLen+100)), st.LiveBytes)

	// Published and older than Retain: both layouts are deleted.
	s.MarkPublished("big", 2)
	clk.Advance(2)
	require.NoError(t, s.Commit(Tick{}))
	got, err = s.Next("big", 0, 10)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, s.db.View(func(tx *bolt.Tx) error {
		k, _ := blocksBucket(tx, "big").Cursor().First()
		require.Nil(t, k, "no nested bucket left behind")
		return nil
	}))
}
