package buffer

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/reading"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is an injectable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testLogger writes to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Helper(); w.t.Log(string(p)); return len(p), nil }

// dbPath returns a fresh buffer path whose file is checked with tx.Check at cleanup.
func dbPath(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "buffer.db")
	t.Cleanup(func() { checkFile(t, path) })
	return path
}

// checkFile opens path read-only (if it exists) and requires tx.Check to pass.
func checkFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		require.Empty(t, errs)
		return nil
	}))
}

// open opens a store and closes it at cleanup (before checkFile, which was registered earlier).
func open(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(path, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// chain builds consecutive blocks of one stream and its heads.
type chain struct {
	stream string
	head   Head
	size   int // payload bytes per block
}

func newChain(stream string, first uint64, size int) *chain {
	c := &chain{stream: stream, size: size}
	copy(c.head.LogID[:], stream)
	c.head.NextSeq = first
	c.head.Created = 42
	return c
}

// block appends a block of n records and returns it; the head advances.
func (c *chain) block(n int) reading.Envelope {
	payload := []byte(fmt.Sprintf("<%s:%d:%d>", c.stream, c.head.NextSeq, n))
	for len(payload) < c.size {
		payload = append(payload, byte('a'+len(payload)%26))
	}
	e := reading.Envelope{Stream: c.stream, FirstSeq: c.head.NextSeq, Records: n, Bytes: payload}
	c.head.NextSeq += uint64(n)
	c.head.LastHash = sha256.Sum256(payload)
	return e
}

// tick builds a Tick of the given blocks, with the current heads of the given chains.
func tick(chains []*chain, blocks ...reading.Envelope) Tick {
	t := Tick{Heads: map[string]Head{}}
	for _, c := range chains {
		t.Heads[c.stream] = c.head
	}
	t.Blocks = blocks
	return t
}

func seqs(envs []reading.Envelope) []uint64 {
	out := make([]uint64, 0, len(envs))
	for _, e := range envs {
		out = append(out, e.FirstSeq)
	}
	return out
}
