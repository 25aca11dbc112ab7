package buffer

import (
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/mrv-agent/mrv-agent/reading"
)

// badRun is a run of consecutive block values of one stream that failed their check.
type badRun struct {
	rng      gapRange
	keys     [][]byte // copies
	reasons  []byte
	firstErr error
	reported bool // set by quarantineTx when a gap record was written
}

// walk visits the stream's values from (k, v) on in key order. good is called for each
// value that passes its check and returns false to stop. Consecutive bad values are
// collected into runs; a run ends at the next good value (LastSeq = its first seq - 1,
// LastHash = its stored prev hash) or at the end of the bucket (from head).
func (s *Store) walk(c *bolt.Cursor, k, v []byte, stream string, head Head,
	good func(first uint64, h blockHeader, payload, v []byte) bool) []badRun {
	var runs []badRun
	b := c.Bucket()
	v = blockValue(b, k, v)
	next := func() ([]byte, []byte) {
		k, v := c.Next()
		return k, blockValue(b, k, v)
	}
	for k != nil {
		first, ok := keySeq(k)
		if !ok || v == nil {
			s.log.Warn("unexpected key in blocks bucket skipped", "stream", stream, "key", fmt.Sprintf("%x", k))
			k, v = next()
			continue
		}
		h, payload, err := decodeBlock(v)
		if err == nil {
			if !good(first, h, payload, v) {
				return runs
			}
			k, v = next()
			continue
		}
		run := badRun{rng: gapRange{Stream: stream, FirstSeq: first}, firstErr: err}
		run.keys = append(run.keys, append([]byte(nil), k...))
		run.reasons = append(run.reasons, reasonOf(err))
		for k, v = next(); k != nil; k, v = next() {
			seq, ok := keySeq(k)
			if !ok || v == nil {
				continue
			}
			h2, _, err := decodeBlock(v)
			if err == nil {
				run.rng.LastSeq = seq - 1
				run.rng.LastHash = h2.prev
				break
			}
			run.keys = append(run.keys, append([]byte(nil), k...))
			run.reasons = append(run.reasons, reasonOf(err))
		}
		if k == nil {
			run.rng.LastSeq = first
			if head.NextSeq > first {
				run.rng.LastSeq = head.NextSeq - 1
			}
			run.rng.LastHash = head.LastHash
		}
		runs = append(runs, run)
	}
	return runs
}

// scanStream builds the index of one stream bucket at Open.
func (s *Store) scanStream(b *bolt.Bucket, stream string, head Head) ([]entry, []badRun) {
	var idx []entry
	c := b.Cursor()
	k, v := c.First()
	runs := s.walk(c, k, v, stream, head, func(first uint64, h blockHeader, _, v []byte) bool {
		idx = append(idx, entry{first: first, last: first + uint64(h.records) - 1, size: int64(len(v)), commitNs: h.commitNs})
		return true
	})
	return idx, runs
}

// Next returns up to max stored envelopes of stream whose LastSeq ≥ from, in seq order.
// The bytes are copies; no transaction is held after return. A value that fails its
// version or CRC check is never returned: Next moves it to the quarantine bucket right
// away (its own short write transaction, serialised with Commit), logs a Warn, counts it
// and, if it holds unpublished seqs, reports it through TakeQuarantined. If that move
// fails the value is still skipped and the move is retried by a later Next.
func (s *Store) Next(stream string, from uint64, max int) ([]reading.Envelope, error) {
	out, bad, err := s.read(stream, from, max)
	s.afterRead(out, bad)
	return out, err
}

// read is Next's read transaction: the envelopes and the runs of bad values it met.
func (s *Store) read(stream string, from uint64, max int) ([]reading.Envelope, []badRun, error) {
	if max <= 0 {
		return nil, nil, nil
	}
	var out []reading.Envelope
	var bad []badRun
	err := s.db.View(func(tx *bolt.Tx) error {
		b := blocksBucket(tx, stream)
		if b == nil {
			return nil
		}
		var head Head
		if hv := tx.Bucket(bucketHeads).Get([]byte(stream)); hv != nil {
			h, err := decodeHead(hv)
			if err != nil {
				s.log.Warn("unreadable head while reading blocks", "stream", stream, "err", err)
			}
			head = h
		}
		c := b.Cursor()
		// Start at the block containing from: the last key ≤ from, else the first key.
		k, v := c.Seek(seqKey(from))
		if k == nil {
			k, v = c.Last()
		} else if seq, _ := keySeq(k); seq > from {
			if pk, pv := c.Prev(); pk != nil {
				k, v = pk, pv
			} else {
				k, v = c.First()
			}
		}
		bad = s.walk(c, k, v, stream, head, func(first uint64, h blockHeader, payload, _ []byte) bool {
			if first+uint64(h.records)-1 < from {
				return true
			}
			out = append(out, reading.Envelope{
				Stream:   stream,
				FirstSeq: first,
				Records:  int(h.records),
				Bytes:    append(make([]byte, 0, len(payload)), payload...),
			})
			return len(out) < max
		})
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read blocks of %q: %w", stream, err)
	}
	return out, bad, nil
}

// afterRead quarantines the bad values a read met (which takes writeMu) and releases the
// file's mapped pages when due.
func (s *Store) afterRead(out []reading.Envelope, bad []badRun) {
	if len(bad) > 0 {
		s.quarantine(bad)
	}
	n := 0
	for _, e := range out {
		n += len(e.Bytes)
	}
	if s.rel.touched(len(out), n) {
		s.releaseMapped()
	}
}

// quarantine moves bad runs found by Next in a short write transaction.
func (s *Store) quarantine(runs []badRun) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var moved []badRun
	nowNs := s.now().UnixNano()
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		moved, err = s.quarantineTx(tx, runs, nowNs)
		return err
	})
	if err != nil {
		s.log.Error("quarantine failed, value skipped", "stream", runs[0].rng.Stream, "seq", runs[0].rng.FirstSeq, "err", err)
		return
	}
	s.applyQuarantine(moved)
}

// quarantineTx moves each run's values from blocks/<stream> to quarantine/<stream> and, for
// runs holding unpublished seqs, records a gap so it survives a restart until sealed.
// Caller holds writeMu (or is Open).
func (s *Store) quarantineTx(tx *bolt.Tx, runs []badRun, nowNs int64) ([]badRun, error) {
	var moved []badRun
	for _, run := range runs {
		b := blocksBucket(tx, run.rng.Stream)
		if b == nil {
			continue
		}
		qb, err := tx.Bucket(bucketQuarantine).CreateBucketIfNotExists([]byte(run.rng.Stream))
		if err != nil {
			return nil, fmt.Errorf("quarantine bucket %q: %w", run.rng.Stream, err)
		}
		done := run
		done.keys, done.reasons = nil, nil
		for i, k := range run.keys {
			v := getBlock(b, k)
			if v == nil {
				continue // deleted meanwhile (retention)
			}
			if _, _, err := decodeBlock(v); err == nil {
				continue
			}
			if err := qb.Put(k, encodeQuarantine(nowNs, run.reasons[i], v)); err != nil {
				return nil, fmt.Errorf("quarantine %q %x: %w", run.rng.Stream, k, err)
			}
			if err := deleteBlock(b, k); err != nil {
				return nil, fmt.Errorf("quarantine %q %x: %w", run.rng.Stream, k, err)
			}
			done.keys = append(done.keys, k)
			done.reasons = append(done.reasons, run.reasons[i])
		}
		if len(done.keys) == 0 {
			continue
		}
		s.mu.Lock()
		pub := max(s.published[run.rng.Stream], s.heads[run.rng.Stream].Published)
		s.mu.Unlock()
		if done.rng.LastSeq >= pub {
			done.rng.FirstSeq = max(done.rng.FirstSeq, pub) // published seqs are no gap
			if err := tx.Bucket(bucketGaps).Put(gapKey(gapQuarantined, done.rng.Stream, done.rng.FirstSeq), encodeGap(done.rng, nowNs)); err != nil {
				return nil, fmt.Errorf("record quarantine gap: %w", err)
			}
			done.reported = true
		}
		moved = append(moved, done)
	}
	return moved, nil
}

// applyQuarantine updates the in-memory state after quarantineTx committed.
func (s *Store) applyQuarantine(moved []badRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, run := range moved {
		stream := run.rng.Stream
		for _, k := range run.keys {
			seq, _ := keySeq(k)
			idx := s.index[stream]
			if i := sort.Search(len(idx), func(i int) bool { return idx[i].first >= seq }); i < len(idx) && idx[i].first == seq {
				s.live -= idx[i].size
				s.index[stream] = append(idx[:i], idx[i+1:]...)
			}
			s.quarantined++
		}
		if run.reported {
			s.pendQ = append(s.pendQ, run.rng)
		}
		s.log.Warn("corrupt block quarantined", "stream", stream, "first_seq", run.rng.FirstSeq,
			"last_seq", run.rng.LastSeq, "values", len(run.keys), "reported", run.reported, "err", run.firstErr)
	}
}

// NextToPublish is Next for the uplink: what it returns may be in flight to the broker
// from then on, so it is never dropped for MaxBytes while unpublished (if the broker still
// delivered it, a gap-seq declaring it lost would be false). It stays counted in the live
// bytes; the cap is exceeded by at most the blocks in flight.
//
// The read and the pin happen under writeMu, so no Commit can plan a drop between them (a
// Commit that started first finishes first; what it dropped is not read).
func (s *Store) NextToPublish(stream string, from uint64, max int) ([]reading.Envelope, error) {
	s.writeMu.Lock()
	out, bad, err := s.read(stream, from, max)
	if len(out) > 0 {
		end := out[len(out)-1].LastSeq() + 1
		s.mu.Lock()
		if end > s.handed[stream] {
			s.handed[stream] = end
		}
		s.mu.Unlock()
	}
	s.writeMu.Unlock()
	s.afterRead(out, bad)
	return out, err
}

func blocksBucket(tx *bolt.Tx, stream string) *bolt.Bucket {
	bb := tx.Bucket(bucketBlocks)
	if bb == nil {
		return nil
	}
	return bb.Bucket([]byte(stream))
}
