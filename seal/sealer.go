package seal

import (
	"crypto/sha256"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Stream is the sealing state of one stream: where its chain stands.
type Stream struct {
	Name     string
	Origin   string   // {site}/{gateway}/{stream}
	LogID    [16]byte // chosen at the log's genesis
	NextSeq  uint64   // seq of the next record
	LastHash [32]byte // SHA-256 of the last sealed envelope; zero before the first block
}

// Sealer turns records into signed blocks. It holds the key; nothing downstream does.
// A Sealer is not safe for concurrent use: the pipeline is its only user.
type Sealer struct {
	key   *Key
	epoch uint64
}

// NewSealer returns a sealer that signs with key and stamps blocks with epoch (the agent's
// boot counter).
func NewSealer(key *Key, epoch uint64) *Sealer { return &Sealer{key: key, epoch: epoch} }

// Key returns the key in force.
func (s *Sealer) Key() *Key { return s.key }

// SetKey switches to key for every block sealed from now on (after a key-rotation record
// was sealed under the old key in every stream).
func (s *Sealer) SetKey(key *Key) { s.key = key }

// Seal builds the block of recs for st, signs it, advances st (NextSeq, LastHash) and
// returns the envelope. st is unchanged on error.
func (s *Sealer) Seal(st *Stream, recs []reading.Record) (reading.Envelope, error) {
	b := reading.Block{
		V:        reading.BlockVersion,
		Origin:   st.Origin,
		LogID:    st.LogID,
		FirstSeq: st.NextSeq,
		Prev:     st.LastHash,
		Epoch:    s.epoch,
		Records:  recs,
	}
	payload, err := reading.EncodeBlock(&b)
	if err != nil {
		return reading.Envelope{}, fmt.Errorf("seal %s: %w", st.Name, err)
	}
	env, err := s.key.Sign(payload, ContentTypeBlock)
	if err != nil {
		return reading.Envelope{}, fmt.Errorf("seal %s: %w", st.Name, err)
	}
	st.NextSeq += uint64(len(recs))
	st.LastHash = sha256.Sum256(env)
	return reading.Envelope{Stream: st.Name, FirstSeq: b.FirstSeq, Records: len(recs), Bytes: env}, nil
}

// Hash is the chain hash of an envelope: SHA-256 of its full tagged COSE_Sign1 bytes.
func Hash(envelope []byte) [32]byte { return sha256.Sum256(envelope) }

func cborSigStructure(rawProtected []byte, payload []byte) ([]byte, error) {
	return reading.Marshal([]any{"Signature1", cbor.RawMessage(rawProtected), []byte{}, payload})
}
