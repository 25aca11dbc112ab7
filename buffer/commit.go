package buffer

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/mrv-agent/mrv-agent/reading"
)

// maxStreamName bounds stream names (bucket names and gap keys).
const maxStreamName = 255

// Tick is everything one seal tick makes durable, committed in one transaction.
type Tick struct {
	Blocks []reading.Envelope // appended to blocks/<stream>, keyed by FirstSeq
	Heads  map[string]Head    // new heads of the streams that changed (Published is ignored: the store owns it)
	Meta   map[string][]byte  // meta values to set; a nil value deletes the key
}

// pendingBlock is a validated block of the tick with its encoded value.
type pendingBlock struct {
	stream string
	first  uint64
	value  []byte
	e      entry
}

// delEntry is a block chosen for deletion by retention.
type delEntry struct {
	stream      string
	e           entry
	unpublished bool
}

// Commit makes t durable in one bbolt Update (fsync on): the blocks, the heads, the meta
// values, the publish cursors recorded by MarkPublished since the last Commit, the
// forgetting of gaps handed out by TakeQuarantined/TakeDropped, and retention deletes.
// Blocks of a stream must continue it (FirstSeq = the stored head's NextSeq, contiguous),
// and each stream with blocks must have its new head in t.Heads with NextSeq = last
// block's LastSeq+1 and LastHash = SHA-256 of the last block's bytes; otherwise Commit
// returns an error wrapping ErrInvalidTick and writes nothing. An empty Tick only flushes
// cursors and retention (and writes nothing when there is nothing to flush). On error
// nothing is committed and the in-memory state is unchanged. Only one goroutine may call
// Commit.
func (s *Store) Commit(t Tick) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	s.mu.Lock()
	closed := s.closed
	pubs := make(map[string]uint64, len(s.published))
	for k, v := range s.published {
		pubs[k] = v
	}
	nTaken := len(s.takenKeys)
	taken := append([][]byte(nil), s.takenKeys...)
	takenG := append([]takenGap(nil), s.takenGaps...)
	handed := make(map[string]uint64, len(s.handed))
	for k, v := range s.handed {
		handed[k] = v
	}
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("commit: %w", ErrClosed)
	}

	// s.heads and s.index only change under writeMu, which we hold: read them without mu.
	blocks, heads, err := s.prepare(t, pubs)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for k := range t.Meta {
		if isReservedMeta(k) || k == "" {
			return fmt.Errorf("commit: %w: meta key %q is reserved", ErrInvalidTick, k)
		}
	}

	nowNs := s.now().UnixNano()
	combined := make(map[string][]entry, len(s.index))
	nNew := make(map[string]int)
	for name, idx := range s.index {
		combined[name] = idx
	}
	live := s.live
	for _, b := range blocks {
		if nNew[b.stream] == 0 {
			combined[b.stream] = append([]entry(nil), combined[b.stream]...)
		}
		combined[b.stream] = append(combined[b.stream], b.e)
		nNew[b.stream]++
		live += b.e.size
	}
	finalPub := func(stream string) uint64 {
		if h, ok := heads[stream]; ok {
			return h.Published
		}
		return s.heads[stream].Published
	}
	dels, liveAfter := s.planRetention(nowNs, combined, nNew, finalPub, func(n string) uint64 { return handed[n] }, live)

	if len(blocks) == 0 && len(heads) == 0 && len(t.Meta) == 0 && len(taken) == 0 && len(dels) == 0 {
		return nil
	}

	var (
		dropped []gapRange
		carries []carry
		again   []takenGap
	)
	err = s.db.Update(func(tx *bolt.Tx) error {
		bb := tx.Bucket(bucketBlocks)
		for _, b := range blocks {
			sb, err := bb.CreateBucketIfNotExists([]byte(b.stream))
			if err != nil {
				return fmt.Errorf("bucket %q: %w", b.stream, err)
			}
			if err := putBlock(sb, seqKey(b.first), b.value); err != nil {
				return fmt.Errorf("put block %q %d: %w", b.stream, b.first, err)
			}
		}
		hb := tx.Bucket(bucketHeads)
		for name, h := range heads {
			if err := hb.Put([]byte(name), encodeHead(h)); err != nil {
				return fmt.Errorf("put head %q: %w", name, err)
			}
		}
		mb := tx.Bucket(bucketMeta)
		for k, v := range t.Meta {
			var err error
			if v == nil {
				err = mb.Delete([]byte(k))
			} else {
				err = mb.Put([]byte(k), encodeMeta(v))
			}
			if err != nil {
				return fmt.Errorf("put meta %q: %w", k, err)
			}
		}
		gb := tx.Bucket(bucketGaps)
		for _, k := range taken {
			if err := gb.Delete(k); err != nil {
				return fmt.Errorf("delete gap: %w", err)
			}
		}
		var err error
		if carries, err = carryTx(gb, s.carries, takenG, blocks, finalPub, nowNs); err != nil {
			return err
		}
		if dropped, err = s.deleteTx(tx, dels, nowNs); err != nil {
			return err
		}
		carries, again, err = redeclareTx(gb, carries, dropped, nowNs)
		return err
	})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}

	// Apply to memory only after the transaction committed.
	gone := make(map[string]map[uint64]bool)
	nDropped := 0
	for _, d := range dels {
		if gone[d.stream] == nil {
			gone[d.stream] = make(map[uint64]bool)
		}
		gone[d.stream][d.e.first] = true
		if d.unpublished {
			nDropped++
		}
	}
	s.mu.Lock()
	for name, h := range heads {
		s.heads[name] = h
		if h.Published > s.published[name] {
			s.published[name] = h.Published
		}
	}
	for name, idx := range combined {
		if g := gone[name]; len(g) > 0 {
			kept := make([]entry, 0, len(idx)-len(g))
			for _, e := range idx {
				if !g[e.first] {
					kept = append(kept, e)
				}
			}
			idx = kept
		}
		s.index[name] = idx
	}
	s.live = liveAfter
	s.droppedN += uint64(nDropped)
	for _, d := range dropped {
		s.lastDrop[d.Stream] = d
		// An extended run supersedes a pending one with the same start (same key on disk).
		s.pendD = slices.DeleteFunc(s.pendD, func(p gapRange) bool { return p.Stream == d.Stream && p.FirstSeq == d.FirstSeq })
	}
	s.pendD = append(s.pendD, dropped...)
	for _, a := range again {
		same := func(p gapRange) bool { return p.Stream == a.g.Stream && p.FirstSeq == a.g.FirstSeq }
		if a.kind == gapQuarantined {
			s.pendQ = append(slices.DeleteFunc(s.pendQ, same), a.g)
		} else {
			s.pendD = append(slices.DeleteFunc(s.pendD, same), a.g)
		}
	}
	s.carries = carries
	s.takenKeys = s.takenKeys[nTaken:]
	s.takenGaps = s.takenGaps[nTaken:]
	s.mu.Unlock()

	written := 0
	for _, b := range blocks {
		written += len(b.value)
	}
	if s.rel.touched(len(blocks), written) {
		s.releaseMapped()
	}
	for _, d := range dropped {
		s.log.Warn("buffer full, unpublished blocks dropped", "stream", d.Stream, "first_seq", d.FirstSeq, "last_seq", d.LastSeq)
	}
	for _, a := range again {
		s.log.Warn("blocks holding a gap declaration were dropped: declared again", "stream", a.g.Stream, "first_seq", a.g.FirstSeq, "last_seq", a.g.LastSeq)
	}
	if n := len(dels) - nDropped; n > 0 {
		s.log.Debug("retention deleted published blocks", "blocks", n)
	}
	return nil
}

// prepare validates the tick's blocks and heads against the stored heads and encodes
// the values. It returns the heads to write (the tick's, plus those whose publish
// cursor advanced), each with the Published value to persist.
func (s *Store) prepare(t Tick, pubs map[string]uint64) ([]pendingBlock, map[string]Head, error) {
	nowNs := s.now().UnixNano()
	byStream := make(map[string][]reading.Envelope)
	for _, b := range t.Blocks {
		if b.Stream == "" || len(b.Stream) > maxStreamName {
			return nil, nil, fmt.Errorf("%w: stream name %q", ErrInvalidTick, b.Stream)
		}
		if b.Records < 1 || len(b.Bytes) == 0 {
			return nil, nil, fmt.Errorf("%w: block %q %d has %d records, %d bytes", ErrInvalidTick, b.Stream, b.FirstSeq, b.Records, len(b.Bytes))
		}
		byStream[b.Stream] = append(byStream[b.Stream], b)
	}
	for name := range byStream {
		if _, ok := t.Heads[name]; !ok {
			return nil, nil, fmt.Errorf("%w: blocks of %q without a head", ErrInvalidTick, name)
		}
	}
	var out []pendingBlock
	heads := make(map[string]Head)
	names := make([]string, 0, len(t.Heads))
	for name := range t.Heads {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := t.Heads[name]
		if name == "" || len(name) > maxStreamName {
			return nil, nil, fmt.Errorf("%w: stream name %q", ErrInvalidTick, name)
		}
		cur, exists := s.heads[name]
		if exists && cur.LogID != h.LogID {
			return nil, nil, fmt.Errorf("%w: head of %q changes log id", ErrInvalidTick, name)
		}
		blocks := byStream[name]
		next, prev := cur.NextSeq, cur.LastHash
		if !exists && len(blocks) > 0 {
			next = blocks[0].FirstSeq
		}
		for _, b := range blocks {
			if b.FirstSeq != next {
				return nil, nil, fmt.Errorf("%w: block %q starts at seq %d, want %d", ErrInvalidTick, name, b.FirstSeq, next)
			}
			if b.Records <= 0 || b.Records > reading.MaxRecords {
				return nil, nil, fmt.Errorf("%w: block %q %d has %d records", ErrInvalidTick, name, b.FirstSeq, b.Records)
			}
			v := encodeBlock(uint32(b.Records), nowNs, prev, b.Bytes)
			out = append(out, pendingBlock{stream: name, first: b.FirstSeq, value: v,
				e: entry{first: b.FirstSeq, last: b.LastSeq(), size: int64(len(v)), commitNs: nowNs}})
			next, prev = b.LastSeq()+1, sha256.Sum256(b.Bytes)
		}
		if (exists || len(blocks) > 0) && (h.NextSeq != next || h.LastHash != prev) {
			return nil, nil, fmt.Errorf("%w: head of %q (next seq %d) does not match its blocks (next seq %d) or last hash",
				ErrInvalidTick, name, h.NextSeq, next)
		}
		h.Published = cur.Published
		heads[name] = h
	}
	// Publish cursors: persist any that advanced, clamped to the stream's next seq.
	for name, p := range pubs {
		h, ok := heads[name]
		if !ok {
			if h, ok = s.heads[name]; !ok {
				continue // no such stream (yet)
			}
		}
		p = min(p, h.NextSeq)
		if p > h.Published {
			h.Published = p
			heads[name] = h
		}
	}
	return out, heads, nil
}

// planRetention chooses blocks to delete: published blocks older than Retain, then, while
// live bytes exceed MaxBytes, published blocks oldest first, then unpublished blocks
// oldest first. Blocks of the current tick (the last nNew entries) are never chosen.
func (s *Store) planRetention(nowNs int64, combined map[string][]entry, nNew map[string]int,
	pub, handed func(string) uint64, live int64) ([]delEntry, int64) {
	names := make([]string, 0, len(combined))
	for name := range combined {
		names = append(names, name)
	}
	sort.Strings(names)
	deleted := make(map[string][]bool, len(names))
	pubEnd := make(map[string]int, len(names)) // published prefix length (old blocks only)
	for _, name := range names {
		idx := combined[name]
		deleted[name] = make([]bool, len(idx))
		p, old := pub(name), len(idx)-nNew[name]
		n := 0
		for n < old && idx[n].last < p {
			n++
		}
		pubEnd[name] = n
	}
	var dels []delEntry
	del := func(name string, i int, unpublished bool) {
		deleted[name][i] = true
		live -= combined[name][i].size
		dels = append(dels, delEntry{stream: name, e: combined[name][i], unpublished: unpublished})
	}
	if s.retain > 0 {
		cutoff := nowNs - s.retain.Nanoseconds()
		for _, name := range names {
			for i := 0; i < pubEnd[name]; i++ {
				if combined[name][i].commitNs < cutoff {
					del(name, i, false)
				}
			}
		}
	}
	if s.maxBytes <= 0 {
		return dels, live
	}
	// pick deletes, oldest commit time first across streams, from [lo, hi) of each stream.
	pick := func(lo, hi func(string) int, unpublished bool) {
		pos := make(map[string]int, len(names))
		for _, name := range names {
			pos[name] = lo(name)
		}
		for live > s.maxBytes {
			best, bestNs := "", int64(0)
			for _, name := range names {
				for pos[name] < hi(name) && deleted[name][pos[name]] {
					pos[name]++
				}
				if pos[name] >= hi(name) {
					continue
				}
				if ns := combined[name][pos[name]].commitNs; best == "" || ns < bestNs {
					best, bestNs = name, ns
				}
			}
			if best == "" {
				return
			}
			del(best, pos[best], unpublished)
			pos[best]++
		}
	}
	pick(func(string) int { return 0 }, func(n string) int { return pubEnd[n] }, false)
	// Unpublished blocks Next has handed out may be in flight and are kept (published first).
	pick(func(n string) int {
		i, h := pubEnd[n], handed(n)
		for i < len(combined[n])-nNew[n] && combined[n][i].last < h {
			i++
		}
		return i
	}, func(n string) int { return len(combined[n]) - nNew[n] }, true)
	return dels, live
}

// deleteTx deletes the planned blocks and records a gap for each run of dropped
// unpublished blocks (contiguous seqs of one stream), whose LastHash is the SHA-256 of
// the last dropped envelope.
func (s *Store) deleteTx(tx *bolt.Tx, dels []delEntry, nowNs int64) ([]gapRange, error) {
	var unpub []delEntry
	for _, d := range dels {
		if d.unpublished {
			unpub = append(unpub, d)
		}
	}
	sort.Slice(unpub, func(i, j int) bool {
		if unpub[i].stream != unpub[j].stream {
			return unpub[i].stream < unpub[j].stream
		}
		return unpub[i].e.first < unpub[j].e.first
	})
	var dropped []gapRange
	for i, d := range unpub {
		if n := len(dropped); n == 0 || dropped[n-1].Stream != d.stream || dropped[n-1].LastSeq+1 != d.e.first {
			dropped = append(dropped, gapRange{Stream: d.stream, FirstSeq: d.e.first})
		}
		g := &dropped[len(dropped)-1]
		g.LastSeq = d.e.last
		if i+1 < len(unpub) && unpub[i+1].stream == d.stream && unpub[i+1].e.first == d.e.last+1 {
			continue // not the last of its run
		}
		var v []byte
		if b := blocksBucket(tx, d.stream); b != nil {
			v = getBlock(b, seqKey(d.e.first))
		}
		if _, payload, err := decodeBlock(v); err == nil {
			g.LastHash = sha256.Sum256(payload)
		} else {
			s.log.Error("dropped block unreadable, gap has no last hash", "stream", g.Stream, "seq", g.LastSeq, "err", err)
		}
	}
	for _, d := range dels {
		b := blocksBucket(tx, d.stream)
		if b == nil {
			continue
		}
		if err := deleteBlock(b, seqKey(d.e.first)); err != nil {
			return nil, fmt.Errorf("delete block %q %d: %w", d.stream, d.e.first, err)
		}
	}
	gb := tx.Bucket(bucketGaps)
	last := make(map[string]gapRange)
	for i := range dropped {
		g := &dropped[i]
		// A run that starts right after the stream's previous dropped run may hold the block
		// carrying that run's gap-seq record (sealed after it, so the oldest unpublished
		// block then): declare the union, or the earlier declaration could be lost with it.
		// When that block survives, the verifier merely sees overlapping declarations.
		prev, ok := last[g.Stream]
		if !ok {
			prev, ok = s.lastDrop[g.Stream]
		}
		if ok && prev.LastSeq+1 == g.FirstSeq {
			g.FirstSeq = prev.FirstSeq
		}
		if ok {
			if err := gb.Delete(gapKey(gapLastDrop, prev.Stream, prev.FirstSeq)); err != nil {
				return nil, fmt.Errorf("forget last dropped run: %w", err)
			}
		}
		if err := gb.Put(gapKey(gapLastDrop, g.Stream, g.FirstSeq), encodeGap(*g, nowNs)); err != nil {
			return nil, fmt.Errorf("record last dropped run: %w", err)
		}
		last[g.Stream] = *g
		if err := gb.Put(gapKey(gapDropped, g.Stream, g.FirstSeq), encodeGap(*g, nowNs)); err != nil {
			return nil, fmt.Errorf("record dropped gap: %w", err)
		}
	}
	return dropped, nil
}
