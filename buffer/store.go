package buffer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrInUse is returned by Open when another process (or another Store in this process)
// holds the buffer file's lock for longer than Options.Timeout.
var ErrInUse = errors.New("buffer is in use by another process")

// ErrInvalidTick is returned by Commit when a Tick does not continue the stored streams
// (wrong first seq, head not matching its last block, changed log id, reserved meta key).
var ErrInvalidTick = errors.New("invalid tick")

// ErrClosed is returned by Commit after Close.
var ErrClosed = errors.New("buffer closed")

// errCorrupt marks start-up failures that make Open rename the file aside.
var errCorrupt = errors.New("buffer file corrupt")

// Options configure Open.
type Options struct {
	MaxBytes int64         // soft cap on live bytes (sum of stored block values); 0 = no cap
	Retain   time.Duration // how long published blocks stay; 0 = forever
	Timeout  time.Duration // bbolt file-lock wait; default 5s
	Logger   *slog.Logger  // nil discards
	Now      func() time.Time
}

// Head is the durable state of one stream's log.
type Head struct {
	LogID     [16]byte
	NextSeq   uint64   // seq the next record will get
	LastHash  [32]byte // SHA-256 of the last stored envelope bytes (zero before the first block)
	Published uint64   // every seq < Published has been acknowledged by the broker
	Created   int64    // Unix ns of the log's genesis
}

// Quarantined is a run of stored blocks whose values failed their version or CRC check and
// were moved to the quarantine bucket. LastHash is the SHA-256 of the last missing envelope
// (taken from the next good block's stored prev hash, or from the head).
type Quarantined struct {
	Stream   string
	FirstSeq uint64
	LastSeq  uint64
	LastHash [32]byte
}

// Dropped is a run of unpublished blocks deleted because the store exceeded MaxBytes.
// LastHash is the SHA-256 of the last dropped envelope.
type Dropped struct {
	Stream   string
	FirstSeq uint64
	LastSeq  uint64
	LastHash [32]byte
}

// entry is the in-memory index of one stored block.
type entry struct {
	first, last uint64
	size        int64 // stored value bytes
	commitNs    int64
}

// Store is the durable buffer of sealed envelopes. One goroutine (the pipeline) calls
// Commit; Next, MarkPublished, Heads, Meta, Stats and the Take methods are safe to call
// concurrently with it and with each other.
type Store struct {
	db       *bolt.DB
	path     string
	log      *slog.Logger
	now      func() time.Time
	maxBytes int64
	retain   time.Duration
	epoch    uint64

	recoveredPath string
	rel           released // bytes through the mapping since its pages were last released

	// writeMu serialises the store's write transactions (Commit and quarantine moves) so
	// that the in-memory index only changes in the order the transactions commit.
	writeMu sync.Mutex

	// mu guards the fields below. Writers hold writeMu and mu; readers hold mu only.
	mu          sync.Mutex
	heads       map[string]Head   // Published is the persisted cursor
	published   map[string]uint64 // in-memory cursor (≥ persisted)
	index       map[string][]entry
	live        int64
	quarantined uint64 // values in the quarantine bucket
	droppedN    uint64 // blocks dropped for MaxBytes since Open
	pendQ       []gapRange
	pendD       []gapRange
	takenKeys   [][]byte            // gaps handed out by Take*, deleted by the next Commit
	takenGaps   []takenGap          // the same gaps, in the same order
	carries     []carry             // declared gaps whose records are not yet published (writer-owned)
	handed      map[string]uint64   // per stream, 1 + the last seq Next returned: never dropped unpublished
	lastDrop    map[string]gapRange // per stream, the last run dropped for MaxBytes (writer-owned)
	names       []string            // sorted stream names, rebuilt by StreamNames when heads grow
	closed      bool
}

// Open opens (or creates) the buffer at path, increments and commits the boot epoch, and
// rebuilds the in-memory index. A file held by another process makes Open fail after
// Options.Timeout with an error wrapping ErrInUse. A corrupt file (bbolt ErrInvalid,
// ErrChecksum, ErrVersionMismatch, a panic, a failed tx.Check or an unreadable head) is
// renamed to "<path>.corrupt-<unix>" and a fresh file is opened; Recovered reports it.
// Block values that fail their CRC are quarantined during Open.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{
		path:     path,
		log:      opts.Logger,
		now:      opts.Now,
		maxBytes: opts.MaxBytes,
		retain:   opts.Retain,
	}
	if _, err := maybeCompact(path, opts.Timeout, s.log); errors.Is(err, ErrInUse) {
		return nil, err
	} else if err != nil {
		s.log.Error("buffer compaction failed; continuing with the file as it is", "path", path, "err", err)
	}
	err := s.openAndLoad(opts)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, errCorrupt) {
		return nil, err
	}
	aside, rerr := moveAside(path, opts.Now())
	if rerr != nil {
		return nil, fmt.Errorf("open buffer %s: %w; move aside: %w", path, err, rerr)
	}
	s.log.Error("buffer corrupt, moved aside, starting new logs", "path", path, "corrupt_path", aside, "err", err)
	s.recoveredPath = aside
	if err := s.openAndLoad(opts); err != nil {
		return nil, fmt.Errorf("open fresh buffer %s: %w", path, err)
	}
	return s, nil
}

// Recovered reports whether Open found the file corrupt and moved it aside to corruptPath;
// the pipeline then starts new logs whose genesis declares the discontinuity.
func (s *Store) Recovered() (corruptPath string, ok bool) {
	return s.recoveredPath, s.recoveredPath != ""
}

// Epoch returns the boot counter, incremented and committed by Open (1 on a fresh file).
func (s *Store) Epoch() uint64 { return s.epoch }

// Heads returns a copy of all stream heads. Published is the in-memory cursor (clamped
// to NextSeq), which may be ahead of the persisted one until the next Commit.
// StreamNames returns the names of the streams with a head, sorted. The slice is shared
// and must not be modified; it is replaced, not changed, when a stream is added.
func (s *Store) StreamNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) != len(s.heads) {
		names := make([]string, 0, len(s.heads))
		for name := range s.heads {
			names = append(names, name)
		}
		slices.Sort(names)
		s.names = names
	}
	return s.names
}

// Published returns the stream's publish cursor: every seq below it is acknowledged.
func (s *Store) Published(stream string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.heads[stream]
	return max(h.Published, min(s.published[stream], h.NextSeq))
}

func (s *Store) Heads() map[string]Head {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Head, len(s.heads))
	for name, h := range s.heads {
		h.Published = max(h.Published, min(s.published[name], h.NextSeq))
		out[name] = h
	}
	return out
}

// Meta returns a copy of the meta value stored under key, or nil if there is none. A
// value that fails its CRC is reported as an error. The keys "format" and "epoch" are
// reserved.
func (s *Store) Meta(key string) ([]byte, error) {
	if isReservedMeta(key) {
		return nil, fmt.Errorf("read meta %q: reserved key", key)
	}
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(key))
		if v == nil {
			return nil
		}
		val, err := decodeMeta(v)
		if err != nil {
			return err
		}
		out = append(make([]byte, 0, len(val)), val...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read meta %q: %w", key, err)
	}
	return out, nil
}

func isReservedMeta(key string) bool { return key == metaFormat || key == metaEpoch }

// MarkPublished records that every seq ≤ lastSeq of stream has been acknowledged. It is
// in memory and monotonic; the next Commit persists it (losing it only causes resends).
func (s *Store) MarkPublished(stream string, lastSeq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lastSeq+1 > s.published[stream] {
		s.published[stream] = lastSeq + 1
	}
}

// TakeQuarantined returns the quarantined ranges found since the last call. The caller
// seals a gap-seq (reason "quarantined") for each in its next Commit, which also forgets
// them durably; until then they are reported again after a restart.
func (s *Store) TakeQuarantined() []Quarantined {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Quarantined, 0, len(s.pendQ))
	for _, g := range s.pendQ {
		out = append(out, Quarantined(g))
		s.takenKeys = append(s.takenKeys, gapKey(gapQuarantined, g.Stream, g.FirstSeq))
		s.takenGaps = append(s.takenGaps, takenGap{kind: gapQuarantined, g: g})
	}
	s.pendQ = nil
	return out
}

// TakeDropped returns the unpublished ranges deleted for MaxBytes since the last call,
// with the same durability contract as TakeQuarantined (gap-seq reason "buffer-full").
func (s *Store) TakeDropped() []Dropped {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Dropped, 0, len(s.pendD))
	for _, g := range s.pendD {
		out = append(out, Dropped(g))
		s.takenKeys = append(s.takenKeys, gapKey(gapDropped, g.Stream, g.FirstSeq))
		s.takenGaps = append(s.takenGaps, takenGap{kind: gapDropped, g: g})
	}
	s.pendD = nil
	return out
}

// StreamStats describe one stream's stored blocks.
type StreamStats struct {
	Blocks            int       // blocks stored
	Unpublished       int       // blocks with a seq not yet acknowledged
	OldestUnpublished time.Time // commit time of the oldest unpublished block; zero if none
}

// Stats is a snapshot of the store.
type Stats struct {
	Streams     map[string]StreamStats
	LiveBytes   int64  // sum of stored block value sizes
	FileBytes   int64  // size of the bbolt file
	Quarantined uint64 // values in the quarantine bucket
	Dropped     uint64 // unpublished blocks dropped for MaxBytes since Open
}

// Stats returns a snapshot of per-stream and store-wide counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{
		Streams:     make(map[string]StreamStats, len(s.index)),
		LiveBytes:   s.live,
		Quarantined: s.quarantined,
		Dropped:     s.droppedN,
	}
	names := make([]string, 0, len(s.heads))
	for name := range s.heads {
		names = append(names, name)
	}
	for name := range s.index {
		if _, ok := s.heads[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		idx := s.index[name]
		pub := max(s.heads[name].Published, s.published[name])
		ss := StreamStats{Blocks: len(idx)}
		for i := len(idx) - 1; i >= 0 && idx[i].last >= pub; i-- {
			ss.Unpublished++
			ss.OldestUnpublished = time.Unix(0, idx[i].commitNs)
		}
		st.Streams[name] = ss
	}
	s.mu.Unlock()
	if fi, err := os.Stat(s.path); err == nil {
		st.FileBytes = fi.Size()
	}
	return st
}

// Close closes the bbolt file. Calls after the first return nil.
func (s *Store) Close() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close buffer: %w", err)
	}
	return nil
}
