package buffer

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

// snapshot is everything a store serves, to compare before and after a compaction.
type snapshot struct {
	blocks map[string][]reading.Envelope
	heads  map[string]Head
	meta   []byte
	live   int64
}

func takeSnapshot(t *testing.T, s *Store, streams ...string) snapshot {
	t.Helper()
	sn := snapshot{blocks: map[string][]reading.Envelope{}, heads: s.Heads(), live: s.Stats().LiveBytes}
	for _, name := range streams {
		envs, err := s.Next(name, 0, 1<<20)
		require.NoError(t, err)
		sn.blocks[name] = envs
	}
	var err error
	sn.meta, err = s.Meta("state")
	require.NoError(t, err)
	return sn
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	return fi.Size()
}

func TestCompactAtOpen(t *testing.T) {
	defer func(n int64) { compactMinBytes = n }(compactMinBytes)
	compactMinBytes = 256 << 10

	clk := newClock()
	path := dbPath(t)
	opts := Options{Retain: time.Hour, Now: clk.Now, Logger: testLogger(t)}
	s, err := Open(path, opts)
	require.NoError(t, err)
	a, b := newChain("a", 0, 2000), newChain("b", 0, 2000)
	for i := range 400 {
		require.NoError(t, s.Commit(tick([]*chain{a, b}, a.block(3), b.block(1))))
		if i == 350 {
			clk.Advance(2 * time.Hour) // what follows is younger than Retain
		}
	}
	s.MarkPublished("a", a.head.NextSeq-1-30) // the last 10 blocks of a stay unpublished
	s.MarkPublished("b", 360)                 // b: published up to block 360
	require.NoError(t, s.Commit(Tick{Meta: map[string][]byte{"state": []byte("emissions")}}))
	before := takeSnapshot(t, s, "a", "b")
	require.Len(t, before.blocks["a"], 49, "retention deleted the old published blocks")
	require.Len(t, before.blocks["b"], 49)
	epoch := s.Epoch()
	require.NoError(t, s.Close())
	sizeBefore := fileSize(t, path)
	require.Greater(t, sizeBefore, compactMinBytes)

	s2 := open(t, path, opts)
	sizeAfter := fileSize(t, path)
	require.Less(t, sizeAfter*2, sizeBefore, "compacted: %d -> %d bytes", sizeBefore, sizeAfter)
	require.NoFileExists(t, path+compactSuffix)
	require.Equal(t, before, takeSnapshot(t, s2, "a", "b"), "no block lost or duplicated, heads and meta kept")
	require.Equal(t, epoch+1, s2.Epoch())

	// The compacted store keeps working.
	require.NoError(t, s2.Commit(tick([]*chain{a}, a.block(1))))
	envs, err := s2.Next("a", a.head.NextSeq-1, 10)
	require.NoError(t, err)
	require.Len(t, envs, 1)
}

func TestCompactSkips(t *testing.T) {
	defer func(n int64) { compactMinBytes = n }(compactMinBytes)
	compactMinBytes = 64 << 10

	t.Run("small or dense file", func(t *testing.T) {
		path := dbPath(t)
		s := open(t, path, Options{})
		a := newChain("a", 0, 2000)
		for range 100 {
			require.NoError(t, s.Commit(tick([]*chain{a}, a.block(1))))
		}
		require.NoError(t, s.Close())
		size := fileSize(t, path)
		did, err := maybeCompact(path, time.Second, testLogger(t))
		require.NoError(t, err)
		require.False(t, did, "nothing to reclaim")
		require.Equal(t, size, fileSize(t, path))
	})
	t.Run("leftover compaction file", func(t *testing.T) {
		path := dbPath(t)
		require.NoError(t, os.WriteFile(path+compactSuffix, []byte("half written"), 0o600))
		open(t, path, Options{})
		require.NoFileExists(t, path+compactSuffix)
	})
	t.Run("in use", func(t *testing.T) {
		path := dbPath(t)
		s := open(t, path, Options{})
		a := newChain("a", 0, 2000)
		for range 100 {
			require.NoError(t, s.Commit(tick([]*chain{a}, a.block(1))))
		}
		_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
		require.ErrorIs(t, err, ErrInUse)
		require.ErrorContains(t, err, "is another mrv-agent running?")
	})
}
