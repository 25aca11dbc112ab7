package verify

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Finding kinds. A kind marked "failure" counts in Summary.Failures; gap-undeclared counts in
// Summary.GapsUndeclared; the others are informational.
const (
	KindBadTopic        = "bad-topic"         // failure: a topic under mrv/v1/ that is not a valid blocks topic
	KindBadEnvelope     = "bad-envelope"      // failure: not a strict COSE_Sign1 block, or a payload that does not decode
	KindBadSignature    = "bad-signature"     // failure: the signature does not verify under the kid's key
	KindUnknownKey      = "unknown-key"       // failure: the kid names no trusted key for this gateway
	KindWrongKey        = "wrong-key"         // failure: a trusted key, but not the one in force for this log at this seq
	KindTopicMismatch   = "topic-mismatch"    // failure: the block's origin is not the topic's (spliced from another origin)
	KindChainBreak      = "chain-break"       // failure: prev does not match the hash of the previous block (or the gap-seq LastHash)
	KindEquivocation    = "equivocation"      // failure: same seq, different bytes, both validly signed
	KindBadRecord       = "bad-record"        // failure: a signed record that is inconsistent (bad gap range, rotation key not matching its kid)
	KindLogLimit        = "log-limit"         // failure: more logs than Options.MaxLogs; the block was not verified
	KindInternal        = "internal-error"    // failure: the verifier recovered from a bug while handling a message
	KindGapUndeclared   = "gap-undeclared"    // seqs First..Last never arrived and no signed gap-seq record covers them
	KindGapDeclared     = "gap-declared"      // seqs First..Last never arrived; signed gap-seq records cover them
	KindJoined          = "joined"            // the first block seen of a log did not start at seq 0; verification starts there
	KindLate            = "late"              // a block behind the verified range that can no longer be checked (in a hole, before the join, or past the history)
	KindStatusKeyChange = "status-key-change" // TOFU: a gateway's status message is signed by a key other than the one first trusted
	KindTruncated       = "truncated"         // failure: the log's records stop more than 2×heartbeat before the end of the verification (--until)
	KindGapFilled       = "gap-filled"        // blocks that arrived late (resent) filled a gap, their chain links checked on both sides
)

var failureKinds = map[string]bool{
	KindBadTopic: true, KindBadEnvelope: true, KindBadSignature: true, KindUnknownKey: true,
	KindWrongKey: true, KindTopicMismatch: true, KindChainBreak: true, KindEquivocation: true,
	KindBadRecord: true, KindLogLimit: true, KindInternal: true, KindTruncated: true,
}

// IsFailure reports whether findings of kind count as integrity failures.
func IsFailure(kind string) bool { return failureKinds[kind] }

// Finding is one thing the verifier noticed. First and Last are the seqs it concerns
// (the block's range, or the gap's).
type Finding struct {
	Kind   string `json:"kind"`
	Origin string `json:"origin,omitempty"`
	LogID  string `json:"log_id,omitempty"` // lowercase hex
	First  uint64 `json:"first"`
	Last   uint64 `json:"last"`
	Detail string `json:"detail,omitempty"`
}

// Failure reports whether the finding counts in Summary.Failures.
func (f Finding) Failure() bool { return IsFailure(f.Kind) }

// String formats the finding for a human-readable report.
func (f Finding) String() string {
	s := f.Kind
	if f.Origin != "" {
		s += " " + f.Origin
	}
	if f.LogID != "" {
		s += " log " + f.LogID
	}
	if f.LogID != "" {
		if f.First == f.Last {
			s += fmt.Sprintf(" seq %d", f.First)
		} else {
			s += fmt.Sprintf(" seq %d..%d", f.First, f.Last)
		}
	}
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	return s
}

// Summary is what the verifier has seen so far (or in total, after Finish).
type Summary struct {
	Blocks         uint64 // accepted blocks
	Readings       uint64 // reading records in accepted blocks
	Duplicates     uint64 // byte-identical copies of accepted blocks, dropped
	GapsDeclared   uint64 // holes fully covered by signed gap-seq records
	GapsUndeclared uint64 // holes not (fully) covered
	Failures       uint64 // findings of a failure kind
	Logs           int    // logs tracked
	Waiting        int    // blocks waiting in reorder windows
	Ignored        uint64 // messages on topics this verifier does not check (status, cmd, other)
	GapsFilled     uint64 // holes filled by late (resent) blocks; no longer counted as gaps
	ResendRequests uint64 // resend requests handed to Options.Resend
	Findings       []Finding
	// FindingsDropped counts findings not kept in Findings (beyond the bound); they are
	// still counted in Failures and the gap counters.
	FindingsDropped uint64
}

// Clean reports no failures and no undeclared gaps.
func (s Summary) Clean() bool { return s.Failures == 0 && s.GapsUndeclared == 0 }

// JSON returns the summary line of `verify --json`, without a trailing newline:
// {"summary":{"blocks":N,"readings":N,"duplicates":N,"gaps_declared":N,"gaps_undeclared":N,"failures":N}}.
func (s Summary) JSON() ([]byte, error) {
	type line struct {
		Blocks         uint64 `json:"blocks"`
		Readings       uint64 `json:"readings"`
		Duplicates     uint64 `json:"duplicates"`
		GapsDeclared   uint64 `json:"gaps_declared"`
		GapsUndeclared uint64 `json:"gaps_undeclared"`
		Failures       uint64 `json:"failures"`
	}
	return json.Marshal(struct {
		Summary line `json:"summary"`
	}{line{s.Blocks, s.Readings, s.Duplicates, s.GapsDeclared, s.GapsUndeclared, s.Failures}})
}

// ReadingOut is one reading record of an accepted block.
type ReadingOut struct {
	Origin  string
	LogID   [16]byte
	Seq     uint64
	Reading reading.Reading
}

// RecordOut is one record of an accepted block.
type RecordOut struct {
	Origin string
	LogID  [16]byte
	Seq    uint64
	Record reading.Record
}

type readingLine struct {
	Origin     string  `json:"origin"`
	LogID      string  `json:"log_id"`
	Seq        uint64  `json:"seq"`
	Tag        string  `json:"tag"`
	Value      *string `json:"value"`
	Unit       string  `json:"unit"`
	Quality    string  `json:"quality"`
	Time       string  `json:"time"`
	TimeSource string  `json:"time_source"`
	Flags      string  `json:"flags,omitempty"`
	Status     uint32  `json:"status,omitempty"`
	Raw        string  `json:"raw,omitempty"`
}

// ReadingJSON formats one `verify --json` line, without a trailing newline, with the keys
// in this order: origin, log_id (lowercase hex), seq, tag, value (the exact decimal string,
// or null when the reading has no value), unit, quality ("good", "uncertain", "bad"), time
// (RFC 3339 with nanoseconds, UTC), time_source ("device", "server", "gateway"), and, only
// when set, flags ("stale|comms-loss"), status (raw OPC UA StatusCode or Modbus exception)
// and raw (lowercase hex).
func ReadingJSON(r ReadingOut) ([]byte, error) {
	rd := r.Reading
	l := readingLine{
		Origin:     r.Origin,
		LogID:      hex.EncodeToString(r.LogID[:]),
		Seq:        r.Seq,
		Tag:        rd.Tag,
		Unit:       string(rd.Unit),
		Quality:    rd.Quality.Severity.String(),
		Time:       time.Unix(0, rd.Time).UTC().Format(time.RFC3339Nano),
		TimeSource: rd.TimeSource.String(),
		Flags:      rd.Quality.Flags.String(),
		Status:     rd.Quality.Status,
		Raw:        hex.EncodeToString(rd.Raw),
	}
	if rd.HasValue {
		s := rd.Value.String()
		l.Value = &s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		return nil, fmt.Errorf("reading json: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
