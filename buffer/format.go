package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk layout (buffer/FORMAT.md). Every value this package writes, except the raw
// format marker, starts with a version byte and a CRC-32C (Castagnoli) over everything
// after the CRC. A new layout gets a new version byte; old bytes are never reinterpreted.

// formatVersion is the file layout version stored under meta/"format". Version 2 stores
// large block values in a bucket of their own (FORMAT.md); a version-1 file is read as is
// and marked 2 when opened.
const formatVersion uint32 = 2

// Bucket names and reserved meta keys.
var (
	bucketBlocks     = []byte("blocks")
	bucketHeads      = []byte("heads")
	bucketMeta       = []byte("meta")
	bucketQuarantine = []byte("quarantine")
	bucketGaps       = []byte("gaps")

	metaFormat = "format"
	metaEpoch  = "epoch"
)

// Value versions.
const (
	blockV1      = 1
	headV1       = 1
	metaV1       = 1
	quarantineV1 = 1
	gapV1        = 1
)

const (
	frameLen       = 1 + 4                 // version | crc32c
	blockHeaderLen = frameLen + 4 + 8 + 32 // + records | commit_ns | prev
	headLen        = frameLen + 16 + 8 + 32 + 8 + 8
	gapLen         = frameLen + 8 + 32 + 8
	quarHeaderLen  = frameLen + 8 + 1
)

// Gap kinds in the gaps bucket key.
const (
	gapQuarantined byte = 'q'
	gapDropped     byte = 'd'
	// gapLastDrop is the last run of a stream dropped for MaxBytes, declared or not: a
	// later drop that continues it declares the union, because the block that carried
	// the earlier declaration may be among the blocks dropped now.
	gapLastDrop byte = 'l'
)

// Quarantine reasons.
const (
	reasonShort   byte = 1 // value shorter than its header
	reasonVersion byte = 2 // unknown version byte
	reasonCRC     byte = 3 // CRC-32C mismatch
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadValue reports a stored value that failed its version or CRC check.
type errBadValue struct {
	reason byte
	msg    string
}

func (e *errBadValue) Error() string { return e.msg }

func badValue(reason byte, format string, args ...any) error {
	return &errBadValue{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// reasonOf returns the quarantine reason of err (CRC when unknown).
func reasonOf(err error) byte {
	var bv *errBadValue
	if errors.As(err, &bv) {
		return bv.reason
	}
	return reasonCRC
}

// seal fills in the version byte and the CRC of a frame whose body starts at frameLen.
func seal(buf []byte, version byte) []byte {
	buf[0] = version
	binary.BigEndian.PutUint32(buf[1:5], crc32.Checksum(buf[frameLen:], castagnoli))
	return buf
}

// unframe checks version and CRC and returns the body after the frame header.
func unframe(v []byte, version byte, minBody int) ([]byte, error) {
	if len(v) < frameLen+minBody {
		return nil, badValue(reasonShort, "value too short: %d bytes", len(v))
	}
	if v[0] != version {
		return nil, badValue(reasonVersion, "unknown value version %d", v[0])
	}
	if got, want := crc32.Checksum(v[frameLen:], castagnoli), binary.BigEndian.Uint32(v[1:5]); got != want {
		return nil, badValue(reasonCRC, "crc32c mismatch: stored %08x, computed %08x", want, got)
	}
	return v[frameLen:], nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func keySeq(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// blockHeader is the decoded header of a blocks/<stream> value.
type blockHeader struct {
	records  uint32
	commitNs int64
	prev     [32]byte
}

func encodeBlock(records uint32, commitNs int64, prev [32]byte, payload []byte) []byte {
	buf := make([]byte, blockHeaderLen+len(payload))
	binary.BigEndian.PutUint32(buf[5:9], records)
	binary.BigEndian.PutUint64(buf[9:17], uint64(commitNs))
	copy(buf[17:49], prev[:])
	copy(buf[blockHeaderLen:], payload)
	return seal(buf, blockV1)
}

// decodeBlock verifies a stored block value and returns its header and payload (aliasing v).
func decodeBlock(v []byte) (blockHeader, []byte, error) {
	body, err := unframe(v, blockV1, blockHeaderLen-frameLen+1)
	if err != nil {
		return blockHeader{}, nil, err
	}
	h := blockHeader{
		records:  binary.BigEndian.Uint32(body[0:4]),
		commitNs: int64(binary.BigEndian.Uint64(body[4:12])),
	}
	copy(h.prev[:], body[12:44])
	if h.records == 0 {
		return blockHeader{}, nil, badValue(reasonCRC, "block with zero records")
	}
	return h, body[44:], nil
}

func encodeHead(h Head) []byte {
	buf := make([]byte, headLen)
	b := buf[frameLen:]
	copy(b[0:16], h.LogID[:])
	binary.BigEndian.PutUint64(b[16:24], h.NextSeq)
	copy(b[24:56], h.LastHash[:])
	binary.BigEndian.PutUint64(b[56:64], h.Published)
	binary.BigEndian.PutUint64(b[64:72], uint64(h.Created))
	return seal(buf, headV1)
}

func decodeHead(v []byte) (Head, error) {
	b, err := unframe(v, headV1, headLen-frameLen)
	if err != nil {
		return Head{}, err
	}
	var h Head
	copy(h.LogID[:], b[0:16])
	h.NextSeq = binary.BigEndian.Uint64(b[16:24])
	copy(h.LastHash[:], b[24:56])
	h.Published = binary.BigEndian.Uint64(b[56:64])
	h.Created = int64(binary.BigEndian.Uint64(b[64:72]))
	return h, nil
}

func encodeMeta(val []byte) []byte {
	buf := make([]byte, frameLen+len(val))
	copy(buf[frameLen:], val)
	return seal(buf, metaV1)
}

func decodeMeta(v []byte) ([]byte, error) { return unframe(v, metaV1, 0) }

func encodeUint64Meta(x uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], x)
	return encodeMeta(b[:])
}

func decodeUint64Meta(v []byte) (uint64, error) {
	b, err := decodeMeta(v)
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("meta value is %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func encodeQuarantine(atNs int64, reason byte, orig []byte) []byte {
	buf := make([]byte, quarHeaderLen+len(orig))
	binary.BigEndian.PutUint64(buf[5:13], uint64(atNs))
	buf[13] = reason
	copy(buf[quarHeaderLen:], orig)
	return seal(buf, quarantineV1)
}

// gapKey is kind(1) | first_seq(8) | stream.
func gapKey(kind byte, stream string, first uint64) []byte {
	k := make([]byte, 9+len(stream))
	k[0] = kind
	binary.BigEndian.PutUint64(k[1:9], first)
	copy(k[9:], stream)
	return k
}

// gapRange is an unsealed hole in a stream: quarantined or dropped blocks.
type gapRange struct {
	Stream   string
	FirstSeq uint64
	LastSeq  uint64
	LastHash [32]byte
}

func encodeGap(g gapRange, atNs int64) []byte {
	buf := make([]byte, gapLen)
	binary.BigEndian.PutUint64(buf[5:13], g.LastSeq)
	copy(buf[13:45], g.LastHash[:])
	binary.BigEndian.PutUint64(buf[45:53], uint64(atNs))
	return seal(buf, gapV1)
}

func decodeGap(k, v []byte) (kind byte, g gapRange, err error) {
	if len(k) < 10 {
		return 0, g, fmt.Errorf("gap key too short: %d bytes", len(k))
	}
	b, err := unframe(v, gapV1, gapLen-frameLen)
	if err != nil {
		return 0, g, err
	}
	g.Stream = string(k[9:])
	g.FirstSeq = binary.BigEndian.Uint64(k[1:9])
	g.LastSeq = binary.BigEndian.Uint64(b[0:8])
	copy(g.LastHash[:], b[8:40])
	return k[0], g, nil
}
