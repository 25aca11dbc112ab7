package reading

import "fmt"

// Kind is a record's kind; the numbers are the wire codes of ARCHITECTURE.md.
type Kind uint8

// Record kinds.
const (
	KindGenesis     Kind = 0
	KindReading     Kind = 1
	KindDerived     Kind = 2
	KindGapTime     Kind = 3
	KindGapSeq      Kind = 4
	KindHeartbeat   Kind = 5
	KindConfig      Kind = 6
	KindKeyRotation Kind = 7
)

var kindNames = [...]string{"genesis", "reading", "derived", "gap-time", "gap-seq", "heartbeat", "config", "key-rotation"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Reason codes of gap-time, gap-seq and genesis records. They are kebab-case, documented in
// docs/record-format.md, and never change meaning.
const (
	ReasonSourceDown        = "source-down"        // gap-time: the source gave no readings
	ReasonAgentDown         = "agent-down"         // gap-time: the agent was not running
	ReasonClockStep         = "clock-step"         // gap-time: the wall clock jumped
	ReasonNotOperating      = "not-operating"      // gap-time: the unit was not operating
	ReasonBufferUnavailable = "buffer-unavailable" // gap-time: readings dropped, the buffer could not commit them (disk full, I/O error)
	ReasonBufferFull        = "buffer-full"        // gap-seq: unpublished blocks dropped at the buffer cap
	ReasonQuarantined       = "quarantined"        // gap-seq: a stored block failed its checksum
	ReasonExpired           = "expired"            // gap-seq: asked for after retention removed it
	ReasonNewLog            = "new"                // genesis: a stream's first log
	ReasonBufferLost        = "buffer-lost"        // genesis: the previous log's buffer was lost or corrupt
)

// Record is one entry of a stream. Its seq is the block's FirstSeq plus its index.
type Record struct {
	Kind Kind
	Time int64 // Unix ns, UTC
	Body Body
}

// Body is the kind-specific part of a record: one of the *XxxBody types of this package.
type Body interface{ Kind() Kind }

// GenesisBody opens a log. A log that continues a lost one names the lost log's last seq
// and block hash when the agent knows them (from its own retained birth message).
type GenesisBody struct {
	Reason       string  `cbor:"0,keyasint"`
	Kid          []byte  `cbor:"1,keyasint"`
	PrevLogID    []byte  `cbor:"2,keyasint,omitempty"`
	PrevLastSeq  *uint64 `cbor:"3,keyasint,omitempty"`
	PrevLastHash []byte  `cbor:"4,keyasint,omitempty"`
}

// ReadingBody is the body of a reading record (keys as in ARCHITECTURE.md).
type ReadingBody struct {
	Tag        string `cbor:"0,keyasint"`
	Value      *Value `cbor:"1,keyasint,omitempty"`
	Unit       string `cbor:"2,keyasint"`
	Quality    uint8  `cbor:"3,keyasint"`
	Flags      uint32 `cbor:"4,keyasint,omitempty"`
	Status     uint32 `cbor:"5,keyasint,omitempty"`
	TimeSource uint8  `cbor:"6,keyasint"`
	Raw        []byte `cbor:"7,keyasint,omitempty"`
}

// GapTimeBody declares a half-open interval [From, To) without data, and why.
type GapTimeBody struct {
	From   int64  `cbor:"0,keyasint"`
	To     int64  `cbor:"1,keyasint"`
	Reason string `cbor:"2,keyasint"`
}

// GapSeqBody declares seqs First..Last (inclusive) that will never be delivered, and why.
// LastHash is the hash of the envelope of the last missing block, so that a verifier can
// follow the chain across the hole.
type GapSeqBody struct {
	First    uint64 `cbor:"0,keyasint"`
	Last     uint64 `cbor:"1,keyasint"`
	Reason   string `cbor:"2,keyasint"`
	LastHash []byte `cbor:"3,keyasint,omitempty"`
}

// HeartbeatBody says the stream is alive and had nothing else to say.
type HeartbeatBody struct{}

// ConfigBody carries the SHA-256 of the active configuration file.
type ConfigBody struct {
	Hash []byte `cbor:"0,keyasint"`
}

// KeyRotationBody announces the key that signs this stream from the next block on. The
// block that carries it is signed by the old key, which is how trust passes on.
type KeyRotationBody struct {
	Kid       []byte `cbor:"0,keyasint"`
	PublicKey []byte `cbor:"1,keyasint"` // raw 32-byte Ed25519 public key
}

// Kind implementations.
func (*GenesisBody) Kind() Kind     { return KindGenesis }
func (*ReadingBody) Kind() Kind     { return KindReading }
func (*GapTimeBody) Kind() Kind     { return KindGapTime }
func (*GapSeqBody) Kind() Kind      { return KindGapSeq }
func (*HeartbeatBody) Kind() Kind   { return KindHeartbeat }
func (*ConfigBody) Kind() Kind      { return KindConfig }
func (*KeyRotationBody) Kind() Kind { return KindKeyRotation }

func newBody(k Kind) (Body, error) {
	switch k {
	case KindGenesis:
		return new(GenesisBody), nil
	case KindReading:
		return new(ReadingBody), nil
	case KindDerived:
		return new(DerivedBody), nil
	case KindGapTime:
		return new(GapTimeBody), nil
	case KindGapSeq:
		return new(GapSeqBody), nil
	case KindHeartbeat:
		return new(HeartbeatBody), nil
	case KindConfig:
		return new(ConfigBody), nil
	case KindKeyRotation:
		return new(KeyRotationBody), nil
	}
	return nil, fmt.Errorf("record kind %d: %w", k, ErrUnknownKind)
}

// Block is a block payload: a run of consecutive records of one stream.
type Block struct {
	V        uint     `cbor:"0,keyasint"`
	Origin   string   `cbor:"1,keyasint"`
	LogID    [16]byte `cbor:"2,keyasint"`
	FirstSeq uint64   `cbor:"3,keyasint"`
	Prev     [32]byte `cbor:"4,keyasint"`
	Epoch    uint64   `cbor:"5,keyasint"`
	Records  []Record `cbor:"6,keyasint"`
}

// BlockVersion is the payload version this package writes and reads.
const BlockVersion = 1

// LastSeq is the seq of the block's last record.
func (b *Block) LastSeq() uint64 { return b.FirstSeq + uint64(len(b.Records)) - 1 }

// Envelope is a sealed block as stored and published: the tagged COSE_Sign1 bytes plus the
// identity a store or publisher needs without decoding them.
type Envelope struct {
	Stream   string
	FirstSeq uint64
	Records  int    // number of records in the block (≥ 1)
	Bytes    []byte // tagged COSE_Sign1 (CBOR tag 18)
}

// LastSeq is the seq of the envelope's last record.
func (e Envelope) LastSeq() uint64 { return e.FirstSeq + uint64(e.Records) - 1 }
