package reading

import (
	"errors"
	"fmt"
)

// Bounds of a resend request. A verifier asks for at most MaxResendSeqs seqs at once; the
// agent refuses (and a verifier never sends) a request beyond it, and bounds how often it
// answers on its own side.
const (
	MaxResendSeqs  = 100000 // last - first + 1
	MaxResendBytes = 256    // an encoded request is far smaller; anything larger is refused unread
)

// ResendRequest asks a gateway to republish the blocks of one log that hold seqs
// First..Last (inclusive). It is published, unsigned, on mrv/v1/{site}/{gateway}/cmd/resend
// (QoS 1, not retained) as the deterministic CBOR map {0: stream, 1: log_id, 2: first,
// 3: last}. Anyone who can publish to that topic can send one: the agent bounds the range and
// the rate, republishes byte-identical envelopes of what it retains, and seals a gap-seq
// record with reason "expired" for what it no longer has.
type ResendRequest struct {
	Stream string `cbor:"0,keyasint"` // the stream name (last origin segment)
	LogID  []byte `cbor:"1,keyasint"` // 16 bytes
	First  uint64 `cbor:"2,keyasint"`
	Last   uint64 `cbor:"3,keyasint"`
}

// ResendTopic is the topic a gateway's resend requests are published on.
func ResendTopic(site, gateway string) string {
	return "mrv/v1/" + site + "/" + gateway + "/cmd/resend"
}

// Validate checks a request's stream name, log_id length and range.
func (r *ResendRequest) Validate() error {
	if !ValidSegment(r.Stream) {
		return fmt.Errorf("resend request: stream %q is not a valid origin segment", r.Stream)
	}
	if len(r.LogID) != 16 {
		return fmt.Errorf("resend request: log_id of %d bytes, want 16", len(r.LogID))
	}
	if r.First > r.Last {
		return fmt.Errorf("resend request: first %d after last %d", r.First, r.Last)
	}
	if r.Last-r.First >= MaxResendSeqs {
		return fmt.Errorf("resend request: %d..%d is more than %d seqs", r.First, r.Last, MaxResendSeqs)
	}
	return nil
}

// EncodeResendRequest validates r and returns its deterministic CBOR encoding.
func EncodeResendRequest(r *ResendRequest) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return Marshal(r)
}

// DecodeResendRequest decodes a request strictly (the same rules as a block payload: no
// duplicate or unknown keys, no indefinite lengths or tags, canonical encoding) and
// validates it.
func DecodeResendRequest(data []byte) (*ResendRequest, error) {
	if len(data) > MaxResendBytes {
		return nil, fmt.Errorf("resend request: %d bytes, more than %d", len(data), MaxResendBytes)
	}
	if len(data) == 0 {
		return nil, errors.New("resend request: empty")
	}
	r := new(ResendRequest)
	if err := Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("resend request: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}
