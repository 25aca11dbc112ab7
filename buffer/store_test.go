package buffer

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

func TestCommitReopen(t *testing.T) {
	path := dbPath(t)
	a, b := newChain("kiln", 0, 100), newChain("agent", 0, 50)

	s, err := Open(path, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	require.Equal(t, uint64(1), s.Epoch())
	_, rec := s.Recovered()
	require.False(t, rec)

	var want []reading.Envelope
	for i := 0; i < 3; i++ {
		ea, eb := a.block(i+1), b.block(1)
		want = append(want, ea)
		require.NoError(t, s.Commit(tick([]*chain{a, b}, ea, eb)))
	}
	require.NoError(t, s.Commit(Tick{Meta: map[string][]byte{"emissions": []byte("state-1"), "alive": {}}}))
	s.MarkPublished("kiln", 0)
	require.NoError(t, s.Commit(Tick{}))
	require.NoError(t, s.Close())

	s = open(t, path, Options{})
	require.Equal(t, uint64(2), s.Epoch())
	heads := s.Heads()
	require.Len(t, heads, 2)
	wantA := a.head
	wantA.Published = 1
	require.Equal(t, wantA, heads["kiln"])
	require.Equal(t, b.head, heads["agent"])

	got, err := s.Next("kiln", 0, 10)
	require.NoError(t, err)
	require.Equal(t, want, got)

	m, err := s.Meta("emissions")
	require.NoError(t, err)
	require.Equal(t, []byte("state-1"), m)
	m, err = s.Meta("alive")
	require.NoError(t, err)
	require.Equal(t, []byte{}, m)
	m, err = s.Meta("missing")
	require.NoError(t, err)
	require.Nil(t, m)
	_, err = s.Meta("epoch")
	require.Error(t, err)

	// A nil meta value deletes the key.
	require.NoError(t, s.Commit(Tick{Meta: map[string][]byte{"emissions": nil}}))
	m, err = s.Meta("emissions")
	require.NoError(t, err)
	require.Nil(t, m)

	// The log continues exactly where it was.
	require.NoError(t, s.Commit(tick([]*chain{a}, a.block(2))))
	st := s.Stats()
	require.Equal(t, 4, st.Streams["kiln"].Blocks)
	require.Equal(t, 3, st.Streams["kiln"].Unpublished)
	require.Equal(t, 3, st.Streams["agent"].Unpublished)
	require.Positive(t, st.FileBytes)
	require.Equal(t, int64(4*(blockHeaderLen+100)+3*(blockHeaderLen+50)), st.LiveBytes)
}

func TestNextOrdering(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	c := newChain("s", 1, 10)
	// Blocks start at 1, 2, 9, 10, 255, 256, 1000: little-endian or decimal keys would misorder them.
	firsts := []uint64{1, 2, 9, 10, 255, 256, 1000}
	for i, f := range firsts {
		n := 1
		if i+1 < len(firsts) {
			n = int(firsts[i+1] - f)
		}
		require.NoError(t, s.Commit(tick([]*chain{c}, c.block(n))))
	}
	tests := []struct {
		name string
		from uint64
		max  int
		want []uint64
	}{
		{"all", 0, 100, firsts},
		{"from first", 1, 100, firsts},
		{"inside a block", 5, 100, []uint64{2, 9, 10, 255, 256, 1000}},
		{"block boundary", 255, 3, []uint64{255, 256, 1000}},
		{"inside big block", 999, 2, []uint64{256, 1000}},
		{"max", 0, 2, []uint64{1, 2}},
		{"last", 1000, 5, []uint64{1000}},
		{"past the end", 1001, 5, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Next("s", tt.from, tt.max)
			require.NoError(t, err)
			require.Equal(t, tt.want, seqs(got))
		})
	}
	got, err := s.Next("unknown", 0, 5)
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestMarkPublished(t *testing.T) {
	path := dbPath(t)
	c := newChain("s", 0, 10)
	s, err := Open(path, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	for range 5 {
		require.NoError(t, s.Commit(tick([]*chain{c}, c.block(2))))
	}
	s.MarkPublished("s", 3)
	s.MarkPublished("s", 1) // monotonic: ignored
	require.Equal(t, uint64(4), s.Heads()["s"].Published)
	require.NoError(t, s.Close()) // not committed: lost

	s, err = Open(path, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	require.Equal(t, uint64(0), s.Heads()["s"].Published)
	s.MarkPublished("s", 5)
	s.MarkPublished("nosuch", 7) // unknown stream: kept in memory, never written
	require.NoError(t, s.Commit(Tick{}))
	require.NoError(t, s.Close())

	s = open(t, path, Options{})
	require.Equal(t, uint64(6), s.Heads()["s"].Published)
	require.Equal(t, 2, s.Stats().Streams["s"].Unpublished)
	s.MarkPublished("s", 1000) // clamped to NextSeq when persisted
	require.NoError(t, s.Commit(Tick{}))
	require.Equal(t, 0, s.Stats().Streams["s"].Unpublished)
	_, ok := s.Heads()["nosuch"]
	require.False(t, ok)
}

func TestConcurrentNextCommit(t *testing.T) {
	s := open(t, dbPath(t), Options{MaxBytes: 1 << 30})
	const ticks = 200
	streams := []*chain{newChain("a", 0, 300), newChain("b", 0, 700)}
	var total uint64 // records per stream
	for i := range ticks {
		total += uint64(1 + i%3)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range ticks {
			var blocks []reading.Envelope
			for _, c := range streams {
				blocks = append(blocks, c.block(1+i%3))
			}
			if err := s.Commit(tick(streams, blocks...)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for _, c := range streams {
		wg.Add(1)
		go func(stream string, last uint64) {
			defer wg.Done()
			var next uint64
			for next < last {
				envs, err := s.Next(stream, next, 7)
				if err != nil {
					t.Error(err)
					return
				}
				for _, e := range envs {
					if e.FirstSeq != next || !bytes.HasPrefix(e.Bytes, []byte("<"+stream+":")) {
						t.Errorf("stream %s: got block %d, want %d", stream, e.FirstSeq, next)
						return
					}
					next = e.LastSeq() + 1
					s.MarkPublished(stream, e.LastSeq())
				}
				if len(envs) == 0 {
					select {
					case <-done:
					case <-time.After(time.Millisecond):
					}
					_ = s.Stats()
					_ = s.Heads()
				}
			}
		}(c.stream, total)
	}
	wg.Wait()
	require.NoError(t, s.Commit(Tick{}))
	for _, c := range streams {
		require.Equal(t, c.head.NextSeq, s.Heads()[c.stream].Published)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := dbPath(t)
	open(t, path, Options{})

	type result struct {
		s   *Store
		err error
	}
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		s, err := Open(path, Options{Timeout: 200 * time.Millisecond, Logger: testLogger(t)})
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		require.Nil(t, r.s)
		require.ErrorIs(t, r.err, ErrInUse)
		require.Contains(t, r.err.Error(), "in use by another process")
		require.Less(t, time.Since(start), 3*time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("second Open did not fail within 5s: the file lock wait is unbounded")
	}
	// The file was not touched: no corrupt copy, nothing moved aside.
	matches, _ := filepath.Glob(path + ".corrupt-*")
	require.Empty(t, matches)
}

func TestInvalidTick(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	c := newChain("s", 0, 10)
	require.NoError(t, s.Commit(tick([]*chain{c}, c.block(3))))
	before := s.Heads()

	tests := []struct {
		name string
		tick func() Tick
	}{
		{"gap in seq", func() Tick {
			d := *c
			d.head.NextSeq++
			return tick([]*chain{&d}, d.block(1))
		}},
		{"head behind its blocks", func() Tick {
			d := *c
			b := d.block(2)
			d.head.NextSeq--
			return tick([]*chain{&d}, b)
		}},
		{"wrong last hash", func() Tick {
			d := *c
			b := d.block(2)
			d.head.LastHash[0] ^= 1
			return tick([]*chain{&d}, b)
		}},
		{"log id changed", func() Tick {
			d := *c
			d.head.LogID[0] ^= 1
			return tick([]*chain{&d}, d.block(1))
		}},
		{"blocks without head", func() Tick {
			d := *c
			return Tick{Blocks: []reading.Envelope{d.block(1)}}
		}},
		{"zero records", func() Tick {
			d := *c
			b := d.block(1)
			b.Records = 0
			return tick([]*chain{&d}, b)
		}},
		{"reserved meta", func() Tick { return Tick{Meta: map[string][]byte{"epoch": {1}}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Commit(tt.tick())
			require.ErrorIs(t, err, ErrInvalidTick)
			require.Equal(t, before, s.Heads())
		})
	}
	got, err := s.Next("s", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{0}, seqs(got))
	require.True(t, strings.HasPrefix(string(got[0].Bytes), "<s:0:3>"))
	require.NoError(t, s.Commit(tick([]*chain{c}, c.block(1))))
}

func TestStreamNamesAndPublished(t *testing.T) {
	s := open(t, dbPath(t), Options{})
	require.Empty(t, s.StreamNames())
	b, a := newChain("b", 0, 10), newChain("a", 0, 10)
	require.NoError(t, s.Commit(tick([]*chain{b, a}, b.block(1), b.block(1), a.block(1))))
	names := s.StreamNames()
	require.Equal(t, []string{"a", "b"}, names)
	require.Same(t, &names[0], &s.StreamNames()[0], "the same slice while no stream is added")
	c := newChain("c", 0, 10)
	require.NoError(t, s.Commit(tick([]*chain{c}, c.block(1))))
	require.Equal(t, []string{"a", "b", "c"}, s.StreamNames())
	require.Equal(t, []string{"a", "b"}, names, "a slice handed out is never changed")

	require.Zero(t, s.Published("b"))
	s.MarkPublished("b", 0)
	require.Equal(t, uint64(1), s.Published("b"), "in memory at once")
	require.Equal(t, s.Heads()["b"].Published, s.Published("b"))
	require.Zero(t, s.Published("nope"))
}
