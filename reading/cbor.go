package reading

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits on what a decoder accepts. A block holds at most MaxRecords records; anything
// larger is refused before it is allocated.
const (
	MaxRecords    = 10000
	MaxBlockBytes = 4 << 20 // one encoded payload
	maxMapPairs   = 32
	maxNesting    = 8
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	// RFC 8949 §4.2.1 core deterministic encoding: sorted keys, shortest forms, definite
	// lengths. No floats or time values ever reach a payload.
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxArrayElements:  MaxRecords,
		MaxMapPairs:       maxMapPairs,
		MaxNestedLevels:   maxNesting,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal encodes v deterministically. It is exported for the packages that build other
// signed messages of this format (birth, death, resend).
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes data strictly (no duplicate keys, indefinite lengths, tags or unknown
// fields) and checks that v re-encodes to exactly data.
func Unmarshal(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return ErrNotCanonical
	}
	return nil
}

type wireRecord struct {
	Kind Kind            `cbor:"0,keyasint"`
	Time int64           `cbor:"1,keyasint"`
	Body cbor.RawMessage `cbor:"2,keyasint"`
}

type wireRecordOut struct {
	Kind Kind  `cbor:"0,keyasint"`
	Time int64 `cbor:"1,keyasint"`
	Body Body  `cbor:"2,keyasint"`
}

// MarshalCBOR encodes a record as {0: kind, 1: time, 2: body}.
func (r Record) MarshalCBOR() ([]byte, error) {
	if r.Body == nil {
		return nil, fmt.Errorf("record of kind %s has no body", r.Kind)
	}
	if r.Body.Kind() != r.Kind {
		return nil, fmt.Errorf("record of kind %s has a %s body", r.Kind, r.Body.Kind())
	}
	return encMode.Marshal(wireRecordOut(r))
}

// UnmarshalCBOR decodes a record strictly, choosing the body type by kind.
func (r *Record) UnmarshalCBOR(data []byte) error {
	var w wireRecord
	if err := decMode.Unmarshal(data, &w); err != nil {
		return err
	}
	if w.Body == nil {
		return fmt.Errorf("record of kind %s has no body", w.Kind)
	}
	b, err := newBody(w.Kind)
	if err != nil {
		return err
	}
	if err := decMode.Unmarshal(w.Body, b); err != nil {
		return fmt.Errorf("%s body: %w", w.Kind, err)
	}
	*r = Record{Kind: w.Kind, Time: w.Time, Body: b}
	return nil
}

// EncodeBlock returns the deterministic CBOR payload of b.
func EncodeBlock(b *Block) ([]byte, error) {
	if len(b.Records) == 0 {
		return nil, fmt.Errorf("block of %s at seq %d has no records", b.Origin, b.FirstSeq)
	}
	if len(b.Records) > MaxRecords {
		return nil, fmt.Errorf("block of %s at seq %d has %d records, more than %d", b.Origin, b.FirstSeq, len(b.Records), MaxRecords)
	}
	return encMode.Marshal(b)
}

// DecodeBlock decodes a block payload strictly: duplicate keys, indefinite lengths, tags,
// floats, unknown keys and unknown record kinds are errors, every decimal must be
// canonical, and the payload must re-encode to the same bytes.
func DecodeBlock(payload []byte) (*Block, error) {
	if len(payload) > MaxBlockBytes {
		return nil, fmt.Errorf("decode block: %d bytes, more than %d", len(payload), MaxBlockBytes)
	}
	b := new(Block)
	if err := Unmarshal(payload, b); err != nil {
		return nil, fmt.Errorf("decode block: %w", err)
	}
	if b.V != BlockVersion {
		return nil, fmt.Errorf("decode block: version %d, want %d", b.V, BlockVersion)
	}
	if len(b.Records) == 0 {
		return nil, fmt.Errorf("decode block: no records")
	}
	if _, _, _, err := SplitOrigin(b.Origin); err != nil {
		return nil, fmt.Errorf("decode block: %w", err)
	}
	if b.FirstSeq+uint64(len(b.Records)) < b.FirstSeq {
		return nil, fmt.Errorf("decode block: seq overflows")
	}
	for i, rec := range b.Records {
		if rb, ok := rec.Body.(*ReadingBody); ok {
			if rb.Value != nil && !rb.Value.IsCanonical() {
				return nil, fmt.Errorf("decode block: record %d: value [%d, %d]: %w", i, rb.Value.Mantissa, rb.Value.Exp, ErrNotCanonical)
			}
			if rb.Quality > uint8(Bad) || rb.TimeSource > uint8(TimeGateway) {
				return nil, fmt.Errorf("decode block: record %d: quality %d or time source %d out of range", i, rb.Quality, rb.TimeSource)
			}
		}
	}
	return b, nil
}
