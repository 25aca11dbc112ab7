package reading

// Clock synchronisation states, as the kernel reports them (adjtimex).
const (
	ClockUnknown      uint8 = 0
	ClockSynchronised uint8 = 1
	ClockUnsynced     uint8 = 2
)

// Status message kinds.
const (
	StatusBirth = "birth"
	StatusDeath = "death"
)

// StatusMessage is the payload of the signed birth and death messages retained on
// mrv/v1/{site}/{gateway}/status. A verifier learns from the birth which key signs, in
// which epoch, and where each stream's chain stood at connect time; the agent reads its own
// retained birth back to detect a buffer rollback.
type StatusMessage struct {
	Kind      string       `cbor:"0,keyasint"` // birth | death
	Epoch     uint64       `cbor:"1,keyasint"`
	Kid       []byte       `cbor:"2,keyasint"`
	PublicKey []byte       `cbor:"3,keyasint"` // raw 32-byte Ed25519
	Version   string       `cbor:"4,keyasint"`
	Clock     uint8        `cbor:"5,keyasint"`
	Time      int64        `cbor:"6,keyasint"` // Unix ns when the message was made
	Heads     []StreamHead `cbor:"7,keyasint,omitempty"`
}

// StreamHead is where one stream's chain stood.
type StreamHead struct {
	Stream   string `cbor:"0,keyasint"`
	LogID    []byte `cbor:"1,keyasint"`
	NextSeq  uint64 `cbor:"2,keyasint"`
	LastHash []byte `cbor:"3,keyasint"`
}
