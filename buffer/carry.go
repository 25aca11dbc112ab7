package buffer

import (
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// A carry is a declared gap whose gap-seq record is not yet known to be delivered: the
// Commit that forgot the gap (taken by TakeDropped or TakeQuarantined) stored the stream's
// blocks first..last, one of which holds the record. Until the publish cursor passes last,
// those blocks may be dropped for MaxBytes like any unpublished block; a drop that takes
// any of them reports the gap again, so that no loss is left undeclared.
type carry struct {
	kind        byte // gapDropped or gapQuarantined: what the gap is reported as again
	rng         gapRange
	first, last uint64
}

// Carry keys: carryKind(kind) | first_seq(8) | stream, as gap keys.
const (
	gapCarryDropped     byte = 'c'
	gapCarryQuarantined byte = 'k'
	carryLen                 = gapLen + 16
)

func carryKind(kind byte) byte {
	if kind == gapQuarantined {
		return gapCarryQuarantined
	}
	return gapCarryDropped
}

func (c carry) key() []byte { return gapKey(carryKind(c.kind), c.rng.Stream, c.rng.FirstSeq) }

func encodeCarry(c carry, atNs int64) []byte {
	buf := make([]byte, carryLen)
	binary.BigEndian.PutUint64(buf[5:13], c.rng.LastSeq)
	copy(buf[13:45], c.rng.LastHash[:])
	binary.BigEndian.PutUint64(buf[45:53], uint64(atNs))
	binary.BigEndian.PutUint64(buf[53:61], c.first)
	binary.BigEndian.PutUint64(buf[61:69], c.last)
	return seal(buf, gapV1)
}

func decodeCarry(k, v []byte) (carry, error) {
	var c carry
	if len(k) < 10 {
		return c, fmt.Errorf("carry key too short: %d bytes", len(k))
	}
	b, err := unframe(v, gapV1, carryLen-frameLen)
	if err != nil {
		return c, err
	}
	c.kind = gapDropped
	if k[0] == gapCarryQuarantined {
		c.kind = gapQuarantined
	}
	c.rng.Stream = string(k[9:])
	c.rng.FirstSeq = binary.BigEndian.Uint64(k[1:9])
	c.rng.LastSeq = binary.BigEndian.Uint64(b[0:8])
	copy(c.rng.LastHash[:], b[8:40])
	c.first = binary.BigEndian.Uint64(b[48:56])
	c.last = binary.BigEndian.Uint64(b[56:64])
	return c, nil
}

// takenGap is a gap handed out by a Take call, forgotten by the next successful Commit.
type takenGap struct {
	kind byte
	g    gapRange
}

// carryTx records, for each gap taken, the blocks of its stream this tick stores (one of
// them holds its gap-seq record), forgets the carries whose blocks are all published, and
// returns the carries to keep.
func carryTx(gb *bolt.Bucket, old []carry, taken []takenGap, blocks []pendingBlock, pub func(string) uint64, nowNs int64) ([]carry, error) {
	span := make(map[string][2]uint64)
	for _, b := range blocks {
		sp, ok := span[b.stream]
		if !ok {
			sp[0] = b.first
		}
		sp[1] = b.e.last
		span[b.stream] = sp
	}
	var keep []carry
	for _, c := range old {
		if pub(c.rng.Stream) > c.last {
			if err := gb.Delete(c.key()); err != nil {
				return nil, fmt.Errorf("forget carry: %w", err)
			}
			continue
		}
		keep = append(keep, c)
	}
	for _, t := range taken {
		sp, ok := span[t.g.Stream]
		if !ok {
			continue // not sealed this tick (a stream the pipeline does not have)
		}
		c := carry{kind: t.kind, rng: t.g, first: sp[0], last: sp[1]}
		if err := gb.Put(c.key(), encodeCarry(c, nowNs)); err != nil {
			return nil, fmt.Errorf("record carry: %w", err)
		}
		keep = append(slices.DeleteFunc(keep, func(x carry) bool { return string(x.key()) == string(c.key()) }), c)
	}
	return keep, nil
}

// redeclareTx reports again the gaps whose gap-seq records were in blocks dropped now
// (runs), unless a run of this transaction already declares the whole range, and forgets
// those carries. It returns the carries left and the gaps to report.
func redeclareTx(gb *bolt.Bucket, cs []carry, runs []gapRange, nowNs int64) ([]carry, []takenGap, error) {
	var keep []carry
	var again []takenGap
	for _, c := range cs {
		hit, covered := false, false
		for _, r := range runs {
			if r.Stream != c.rng.Stream {
				continue
			}
			hit = hit || (c.first <= r.LastSeq && c.last >= r.FirstSeq)
			covered = covered || (c.kind == gapDropped && r.FirstSeq <= c.rng.FirstSeq && r.LastSeq >= c.rng.LastSeq)
		}
		if !hit {
			keep = append(keep, c)
			continue
		}
		if err := gb.Delete(c.key()); err != nil {
			return nil, nil, fmt.Errorf("forget carry: %w", err)
		}
		if covered {
			continue
		}
		if err := gb.Put(gapKey(c.kind, c.rng.Stream, c.rng.FirstSeq), encodeGap(c.rng, nowNs)); err != nil {
			return nil, nil, fmt.Errorf("record gap again: %w", err)
		}
		again = append(again, takenGap{kind: c.kind, g: c.rng})
	}
	return keep, again, nil
}
