package buffer

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

// patchFile overwrites path at off with b (through a separate fd: bbolt's read-only
// shared mapping sees the change, as it would see a bit rot on disk).
func patchFile(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(b, off)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// flipPayloadByte flips one byte inside every stored copy of the payload that starts with
// marker (freed pages may still hold older copies of a leaf).
func flipPayloadByte(t *testing.T, path, marker string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	n := 0
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(marker))
		if j < 0 {
			break
		}
		off := i + j + len(marker) + 3
		patchFile(t, path, int64(off), []byte{data[off] ^ 0x40})
		n++
		i = off
	}
	require.Positive(t, n, "marker %q not in file", marker)
}

// fill commits blocks of 1 record each: seqs 0..n-1.
func fill(t *testing.T, s *Store, c *chain, n int) {
	t.Helper()
	for range n {
		require.NoError(t, s.Commit(tick([]*chain{c}, c.block(1))))
	}
}

// TestQuarantineWhileOpen runs with small (inline) and large (nested) block values.
func TestQuarantineWhileOpen(t *testing.T) {
	for _, size := range []int{200, 8000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testQuarantineWhileOpen(t, size) })
	}
}

func testQuarantineWhileOpen(t *testing.T, size int) {
	path := dbPath(t)
	s := open(t, path, Options{})
	c := newChain("s", 0, size)
	fill(t, s, c, 6)
	hashOf3 := sha256.Sum256(mustNext(t, s, 3)[0].Bytes)

	flipPayloadByte(t, path, "<s:2:1>")
	flipPayloadByte(t, path, "<s:3:1>")
	flipPayloadByte(t, path, "<s:5:1>") // the last block: its range ends at the head

	got, err := s.Next("s", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 1, 4}, seqs(got), "corrupt values are never served")
	q := s.TakeQuarantined()
	require.Equal(t, []Quarantined{
		{Stream: "s", FirstSeq: 2, LastSeq: 3, LastHash: hashOf3},
		{Stream: "s", FirstSeq: 5, LastSeq: 5, LastHash: c.head.LastHash},
	}, q)
	require.Empty(t, s.TakeQuarantined())
	st := s.Stats()
	require.Equal(t, uint64(3), st.Quarantined)
	require.Equal(t, 3, st.Streams["s"].Blocks)
	require.Equal(t, int64(3*(blockHeaderLen+size)), st.LiveBytes)

	// Served again from the start: still skipped, not reported twice.
	got, err = s.Next("s", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{0, 1, 4}, seqs(got))
	require.Empty(t, s.TakeQuarantined())

	// The pipeline seals the gap in the next commit; the store keeps going.
	require.NoError(t, s.Commit(tick([]*chain{c}, c.block(1))))
	got, err = s.Next("s", 5, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{6}, seqs(got))
}

func mustNext(t *testing.T, s *Store, from uint64) []reading.Envelope {
	t.Helper()
	got, err := s.Next("s", from, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	return got
}

func TestQuarantineAtOpenSurvivesRestart(t *testing.T) {
	path := dbPath(t)
	c := newChain("s", 0, 200)
	s, err := Open(path, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	fill(t, s, c, 4)
	s.MarkPublished("s", 0)
	require.NoError(t, s.Commit(Tick{}))
	require.NoError(t, s.Close())

	flipPayloadByte(t, path, "<s:0:1>") // published: quarantined, no gap reported
	flipPayloadByte(t, path, "<s:1:1>")

	want := []Quarantined{{Stream: "s", FirstSeq: 1, LastSeq: 1, LastHash: sha256.Sum256(mustPayload(t, c, 1))}}
	s, err = Open(path, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	require.Equal(t, uint64(2), s.Stats().Quarantined)
	require.Equal(t, uint64(2), s.Epoch())
	require.NoError(t, s.Close()) // not taken: reported again after a restart

	s, err = Open(path, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	require.Equal(t, want, s.TakeQuarantined())
	require.NoError(t, s.Commit(Tick{})) // taken + committed: forgotten durably
	require.NoError(t, s.Close())

	s = open(t, path, Options{})
	require.Empty(t, s.TakeQuarantined())
	got, err := s.Next("s", 0, 10)
	require.NoError(t, err)
	require.Equal(t, []uint64{2, 3}, seqs(got))
}

// mustPayload rebuilds the payload of the 1-record block at seq of a chain built like c.
func mustPayload(t *testing.T, c *chain, seq uint64) []byte {
	t.Helper()
	d := newChain(c.stream, seq, c.size)
	return d.block(1).Bytes
}

func TestCorruptFileMovedAside(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"both meta pages garbled", func(t *testing.T, path string) {
			garbage := bytes.Repeat([]byte{0xA5}, 64)
			ps := int64(os.Getpagesize())
			patchFile(t, path, 16, garbage) // page 0 body (after the page header)
			patchFile(t, path, ps+16, garbage)
		}},
		{"both meta pages zeroed", func(t *testing.T, path string) {
			ps := os.Getpagesize()
			patchFile(t, path, 0, make([]byte, 2*ps))
		}},
		{"data page headers garbled", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			ps := int64(os.Getpagesize())
			for p := int64(2); p*ps < fi.Size(); p++ {
				patchFile(t, path, p*ps, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x37, 0x13})
			}
		}},
		{"leaf page garbled (tx.Check)", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			ps := os.Getpagesize()
			n := 0
			for i := 0; ; {
				j := bytes.Index(data[i:], []byte("<s:2:1>"))
				if j < 0 {
					break
				}
				page := (i + j) / ps
				patchFile(t, path, int64(page*ps+8), []byte{0x37, 0x13}) // page flags
				n++
				i += j + 1
			}
			require.Positive(t, n)
		}},
		{"not a bbolt file", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not bbolt "), 2000), 0o600))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := dbPath(t)
			c := newChain("s", 0, 3000)
			s, err := Open(path, Options{Logger: testLogger(t)})
			require.NoError(t, err)
			fill(t, s, c, 5)
			require.NoError(t, s.Close())

			tt.corrupt(t, path)

			s = open(t, path, Options{})
			aside, ok := s.Recovered()
			require.True(t, ok)
			require.Equal(t, filepath.Dir(path), filepath.Dir(aside))
			require.Regexp(t, `buffer\.db\.corrupt-\d+$`, aside)
			_, err = os.Stat(aside)
			require.NoError(t, err, "corrupt file kept for inspection")
			require.Empty(t, s.Heads(), "fresh store")
			require.Equal(t, uint64(1), s.Epoch())
			// The fresh store works.
			d := newChain("s", 0, 10)
			require.NoError(t, s.Commit(tick([]*chain{d}, d.block(1))))
		})
	}
}
