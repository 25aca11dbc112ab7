package verify

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// Defaults of Options.
const (
	DefaultReorderWindow   = 64
	DefaultReorderTimeout  = 10 * time.Second
	DefaultMaxLogs         = 10000
	DefaultHistory         = 4096
	DefaultMaxWaitingBytes = 256 << 20
	DefaultHeartbeat       = 30 * time.Second
	DefaultResendRetry     = 30 * time.Second
)

// Internal bounds. Each keeps memory bounded whatever arrives.
const (
	keepEnvelopes  = 16    // accepted envelopes per log kept whole, for equivocation evidence
	maxFindings    = 10000 // findings kept in the summary (all are counted)
	maxHoles       = 1024  // holes per log whose classification can still change
	maxDeclared    = 256   // gap-seq ranges remembered per log
	maxEquivSeen   = 1024  // equivocating envelope hashes remembered per log
	maxEvidence    = 64    // evidence pairs kept in memory
	maxTopicReport = 200   // bytes of a bad topic quoted in a finding
)

// Options configure a Verifier. Zero values mean the defaults.
type Options struct {
	Keys           []ed25519.PublicKey // trusted keys (from --pubkey files), trusted for every gateway
	TOFU           bool                // trust the first key of each gateway, learned from its signed status message
	ReorderWindow  int                 // blocks held per log while waiting for a missing seq (default 64)
	ReorderTimeout time.Duration       // how long a block may wait, measured on receive times (default 10 s)
	// OnReading is called for every reading record of an accepted block, in seq order per
	// log. It runs with the verifier locked: it must not call the Verifier's methods.
	OnReading func(ReadingOut)
	// OnRecord is called for every record (of any kind) of an accepted block, in seq order
	// per log, before OnReading for the same record. Same locking rule as OnReading.
	OnRecord func(RecordOut)
	// EvidenceDir receives equivocating envelope pairs as
	// <origin with / replaced by _>-<logid>-<seq>-{a,b}.cose ("" = keep them in memory only;
	// see Evidence). It is created if missing.
	EvidenceDir     string
	Logger          *slog.Logger
	MaxLogs         int // logs tracked at once (default 10000); blocks of further logs are failures
	History         int // accepted block hashes kept per log to recognise duplicates (default 4096)
	MaxWaitingBytes int // envelope bytes held in all reorder windows together (default 256 MiB)

	// Until is the time up to which the streams are judged: a log whose last record is older
	// than Until − 2×Heartbeat is reported truncated. Zero means the latest receive time
	// given to Add or Tick (the end of a live run, or of a capture).
	Until time.Time
	// Heartbeat is the longest a live stream stays silent (the agent's blocks.heartbeat;
	// default 30 s). Negative: no truncation judgement.
	Heartbeat time.Duration
	// Resend, if set, is called (with the verifier locked: it must not block or call the
	// Verifier) to publish a resend request for an undeclared gap: topic is
	// mrv/v1/{site}/{gateway}/cmd/resend and payload a reading.ResendRequest. Requests are
	// rate-limited per gateway and retried at most a few times per gap (ResendRetry apart).
	Resend      func(topic string, payload []byte)
	ResendRetry time.Duration // default 30 s
	// StatePath, if set, is a bbolt file that keeps the per-log state (next seq, last hash,
	// key in force, open gaps, blocks in reorder windows) and the keys learned, so that a
	// verifier restarted with it continues each log where it stood. It is saved about once a
	// second by Tick and Add, and by Finish and Close. Only one Verifier may open it.
	StatePath string
}

// Evidence is a pair of validly signed envelopes that claim the same seq of one log.
type Evidence struct {
	Origin string
	LogID  [16]byte
	Seq    uint64
	A      []byte   // the accepted envelope; nil when it was no longer retained (AHash names it)
	AHash  [32]byte // SHA-256 of A
	B      []byte   // the conflicting envelope
	Files  []string // where they were written, if Options.EvidenceDir is set
}

// Verifier checks block streams. Its methods are safe for concurrent use; Add calls are
// processed one at a time.
type Verifier struct {
	mu   sync.Mutex
	opts Options
	log  *slog.Logger

	keys    map[[32]byte]ed25519.PublicKey // every public key known, by kid
	trusted map[[32]byte]bool              // Options.Keys
	gwKeys  map[string]map[[32]byte]bool   // keys trusted for one gateway (TOFU, rotations)
	tofu    map[string][32]byte            // first key trusted per gateway
	logs    map[logKey]*logState           //
	waiting map[*logState]struct{}         // logs with blocks in their reorder window
	tofuBad map[string]map[[32]byte]bool   // status key changes already reported
	// logs named as the predecessor by a later log's genesis (not truncated)
	superseded map[logKey]bool

	waitBytes int
	waitCount int
	sum       Summary // counters only
	findings  []Finding
	retired   []Finding // findings of holes no longer tracked
	evidence  []Evidence
	finished  bool

	now        time.Time              // latest receive time given to Add or Tick
	unresolved map[*logState]struct{} // logs with undeclared holes (resend candidates)
	resendWin  map[string]*resendWindow
	state      *stateStore // nil without Options.StatePath
	dirty      map[*logState]struct{}
	keysDirty  bool
	lastSave   time.Time
	stateErr   error
}

type logKey struct {
	origin string
	id     [16]byte
}

// New returns a Verifier. It fails when no key is trusted and TOFU is off, on a public key
// of the wrong length, on negative bounds, or when EvidenceDir cannot be created.
func New(opts Options) (*Verifier, error) {
	if len(opts.Keys) == 0 && !opts.TOFU {
		return nil, errors.New("verify: no trusted public key (give one, or opt in to trust on first use)")
	}
	if opts.ReorderWindow < 0 || opts.ReorderTimeout < 0 || opts.MaxLogs < 0 || opts.History < 0 || opts.MaxWaitingBytes < 0 {
		return nil, errors.New("verify: negative reorder window, timeout or bound")
	}
	if opts.ReorderWindow == 0 {
		opts.ReorderWindow = DefaultReorderWindow
	}
	if opts.ReorderTimeout == 0 {
		opts.ReorderTimeout = DefaultReorderTimeout
	}
	if opts.MaxLogs == 0 {
		opts.MaxLogs = DefaultMaxLogs
	}
	if opts.History == 0 {
		opts.History = DefaultHistory
	}
	if opts.MaxWaitingBytes == 0 {
		opts.MaxWaitingBytes = DefaultMaxWaitingBytes
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.ResendRetry <= 0 {
		opts.ResendRetry = DefaultResendRetry
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	v := &Verifier{
		opts:    opts,
		log:     log,
		keys:    make(map[[32]byte]ed25519.PublicKey),
		trusted: make(map[[32]byte]bool),
		gwKeys:  make(map[string]map[[32]byte]bool),
		tofu:    make(map[string][32]byte),
		logs:    make(map[logKey]*logState),
		waiting: make(map[*logState]struct{}),
		tofuBad: make(map[string]map[[32]byte]bool),

		unresolved: make(map[*logState]struct{}),
		superseded: make(map[logKey]bool),
		resendWin:  make(map[string]*resendWindow),
		dirty:      make(map[*logState]struct{}),
	}
	for i, k := range opts.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("verify: trusted key %d has %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
		kid := seal.KeyID(k)
		v.keys[kid] = k
		v.trusted[kid] = true
	}
	if opts.EvidenceDir != "" {
		if err := os.MkdirAll(opts.EvidenceDir, 0o755); err != nil {
			return nil, fmt.Errorf("verify: evidence dir: %w", err)
		}
	}
	if opts.StatePath != "" {
		if err := v.openState(opts.StatePath); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Add handles one received message: recv is when it arrived, topic where, envelope its
// payload. Blocks topics are verified; a gateway's status topic only feeds TOFU; other
// topics are counted as ignored. Add never panics and does not keep envelope after it
// returns. It also expires reorder windows against recv. Add after Finish is ignored.
func (v *Verifier) Add(recv time.Time, topic string, envelope []byte) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.finished {
		v.log.Warn("verify: message after finish ignored", "topic", topic)
		return
	}
	if recv.After(v.now) {
		v.now = recv
	}
	v.guard(topic, func() { v.add(recv, topic, envelope) })
	v.guard(topic, func() { v.expire(recv) })
	v.guard(topic, func() { v.resends(recv) })
	v.maybeSave(recv)
}

// Tick expires reorder windows against now (a receive-time clock) without a message; a live
// verifier calls it periodically so that a gap is declared even when the stream goes quiet.
func (v *Verifier) Tick(now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.finished {
		if now.After(v.now) {
			v.now = now
		}
		v.guard("", func() { v.expire(now) })
		v.guard("", func() { v.resends(now) })
		v.maybeSave(now)
	}
}

// Finish flushes every reorder window (what is still missing becomes a gap) and returns the
// final summary. It is idempotent.
func (v *Verifier) Finish() Summary {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.finished {
		// The state saved is the one before the windows are flushed: a verifier restarted
		// with it still waits for the blocks missing here.
		v.saveState()
		v.guard("", func() {
			for l := range v.waiting {
				for len(l.waiting) > 0 {
					v.skip(l)
				}
			}
		})
		v.guard("", v.flushHoleWindows)
		v.guard("", v.judgeTruncation)
		v.finished = true
	}
	return v.summary()
}

// Close saves the state (when Options.StatePath is set and Finish has not already saved it)
// and closes the state file. It returns the first error saving the state met.
func (v *Verifier) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state == nil {
		return v.stateErr
	}
	if !v.finished {
		v.saveState()
	}
	err := v.state.close()
	v.state = nil
	return errors.Join(v.stateErr, err)
}

// judgeTruncation reports every log whose last record is older than Until − 2×Heartbeat:
// the agent seals at least a heartbeat every blocks.heartbeat, so such a stream stopped (or
// was cut off) before the end of what is being verified. A log that a later log of the same
// origin names as its predecessor (genesis after a lost buffer) is not truncated.
func (v *Verifier) judgeTruncation() {
	hb := v.opts.Heartbeat
	until := v.opts.Until
	if until.IsZero() {
		until = v.now
	}
	if hb < 0 || until.IsZero() {
		return
	}
	limit := until.Add(-2 * hb).UnixNano()
	keys := make([]logKey, 0, len(v.logs))
	for k, l := range v.logs {
		if l.started && l.hasTime && !l.superseded && l.lastTime < limit {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].origin != keys[j].origin {
			return keys[i].origin < keys[j].origin
		}
		return bytes.Compare(keys[i].id[:], keys[j].id[:]) < 0
	})
	for _, k := range keys {
		l := v.logs[k]
		last := time.Unix(0, l.lastTime).UTC()
		v.addFinding(Finding{Kind: KindTruncated, Origin: l.origin, LogID: l.idHex, First: l.next - 1, Last: l.next - 1,
			Detail: fmt.Sprintf("last record at %s, %s before %s (heartbeat %s)", last.Format(time.RFC3339Nano), until.Sub(last).Round(time.Millisecond), until.UTC().Format(time.RFC3339Nano), hb)})
	}
}

// Summary returns a snapshot of the counters and findings so far.
func (v *Verifier) Summary() Summary {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.summary()
}

// Evidence returns the equivocation pairs found so far (at most 64 are kept in memory).
func (v *Verifier) Evidence() []Evidence {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]Evidence(nil), v.evidence...)
}

// guard turns a panic, which would be a bug, into a finding so that a bad message can never
// stop a verifier.
func (v *Verifier) guard(topic string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			v.addFinding(Finding{Kind: KindInternal, Detail: fmt.Sprintf("topic %q: %v", clip(topic), r)})
		}
	}()
	fn()
}

func (v *Verifier) summary() Summary {
	s := v.sum
	s.Logs = len(v.logs)
	s.Waiting = v.waitCount
	for _, l := range v.logs {
		for _, h := range l.holes {
			s.Waiting += len(h.waiting)
		}
	}
	s.Findings = make([]Finding, 0, len(v.findings)+len(v.retired))
	s.Findings = append(s.Findings, v.findings...)
	s.Findings = append(s.Findings, v.retired...)
	for _, l := range v.logs {
		for _, h := range l.holes {
			s.Findings = append(s.Findings, h.finding(l))
		}
	}
	return s
}

func (v *Verifier) addFinding(f Finding) {
	if IsFailure(f.Kind) {
		v.sum.Failures++
		v.log.Warn("verify: "+f.Kind, "origin", f.Origin, "log_id", f.LogID, "first", f.First, "last", f.Last, "detail", f.Detail)
	} else {
		v.log.Info("verify: "+f.Kind, "origin", f.Origin, "log_id", f.LogID, "first", f.First, "last", f.Last, "detail", f.Detail)
	}
	if len(v.findings)+len(v.retired) >= maxFindings {
		v.sum.FindingsDropped++
		return
	}
	v.findings = append(v.findings, f)
}

func blockFinding(kind string, b *reading.Block, detail string) Finding {
	return Finding{Kind: kind, Origin: b.Origin, LogID: hex.EncodeToString(b.LogID[:]), First: b.FirstSeq, Last: b.LastSeq(), Detail: detail}
}

func clip(s string) string {
	if len(s) > maxTopicReport {
		return s[:maxTopicReport] + "..."
	}
	return s
}

type topicKind int

const (
	topicOther topicKind = iota
	topicBlocks
	topicStatus
	topicBad
)

// parseTopic classifies a topic: mrv/v1/{site}/{gateway}/{stream}/blocks (origin set),
// mrv/v1/{site}/{gateway}/status (gateway set), a malformed blocks topic, or anything else.
func parseTopic(topic string) (kind topicKind, gateway, origin string) {
	if !strings.HasPrefix(topic, "mrv/v1/") {
		return topicOther, "", ""
	}
	p := strings.Split(topic, "/")
	last := p[len(p)-1]
	switch {
	case last == "blocks":
		if len(p) != 6 {
			return topicBad, "", ""
		}
		o := reading.Origin(p[2], p[3], p[4])
		if _, _, _, err := reading.SplitOrigin(o); err != nil {
			return topicBad, "", ""
		}
		return topicBlocks, p[2] + "/" + p[3], o
	case last == "status" && len(p) == 5 && reading.ValidSegment(p[2]) && reading.ValidSegment(p[3]):
		return topicStatus, p[2] + "/" + p[3], ""
	}
	return topicOther, "", ""
}

// pending is a parsed block on its way through the verifier.
type pending struct {
	recv     time.Time
	env      []byte
	hash     [32]byte
	signed   *seal.Signed
	blk      *reading.Block
	verified bool // signature checked under the kid's key (not yet whether that key is in force)
}

func (v *Verifier) add(recv time.Time, topic string, envelope []byte) {
	kind, gw, origin := parseTopic(topic)
	switch kind {
	case topicOther:
		v.sum.Ignored++
		v.log.Debug("verify: topic ignored", "topic", clip(topic))
		return
	case topicStatus:
		v.sum.Ignored++
		v.status(gw, envelope)
		return
	case topicBad:
		v.addFinding(Finding{Kind: KindBadTopic, Detail: fmt.Sprintf("topic %q is not mrv/v1/{site}/{gateway}/{stream}/blocks", clip(topic))})
		return
	}
	env := bytes.Clone(envelope)
	signed, err := seal.Parse(env)
	if err != nil {
		v.addFinding(Finding{Kind: KindBadEnvelope, Origin: origin, Detail: err.Error()})
		return
	}
	if signed.ContentType != seal.ContentTypeBlock {
		v.addFinding(Finding{Kind: KindBadEnvelope, Origin: origin, Detail: fmt.Sprintf("content type %q on a blocks topic", signed.ContentType)})
		return
	}
	p := &pending{recv: recv, env: env, hash: seal.Hash(env), signed: signed}
	if pub, ok := v.keys[signed.Kid]; ok {
		if err := signed.Verify(pub); err != nil {
			v.addFinding(Finding{Kind: KindBadSignature, Origin: origin, Detail: fmt.Sprintf("kid %x: %v", signed.Kid[:8], err)})
			return
		}
		p.verified = true
	}
	blk, err := reading.DecodeBlock(signed.Payload)
	if err != nil {
		v.addFinding(Finding{Kind: KindBadEnvelope, Origin: origin, Detail: err.Error()})
		return
	}
	p.blk = blk
	if blk.Origin != origin {
		f := blockFinding(KindTopicMismatch, blk, fmt.Sprintf("block of %s received on the topic of %s", blk.Origin, origin))
		f.Origin = origin
		v.addFinding(f)
		return
	}
	l := v.logFor(blk, gw)
	if l == nil {
		return
	}
	v.place(l, p)
}

// status learns a gateway's key on first use from its signed status (birth) message: the
// payload is a CBOR map one of whose values is the raw public key that the envelope's kid
// names, and the message must verify under that key.
func (v *Verifier) status(gw string, envelope []byte) {
	if !v.opts.TOFU {
		return
	}
	signed, err := seal.Parse(envelope)
	if err != nil || signed.ContentType != seal.ContentTypeStatus {
		v.log.Warn("verify: status message not a signed status envelope", "gateway", gw, "err", err)
		return
	}
	if first, ok := v.tofu[gw]; ok {
		if signed.Kid != first && !v.gwKeys[gw][signed.Kid] && !v.trusted[signed.Kid] {
			seen := v.tofuBad[gw]
			if seen == nil {
				seen = make(map[[32]byte]bool)
				v.tofuBad[gw] = seen
			}
			if !seen[signed.Kid] && len(seen) < maxEquivSeen {
				seen[signed.Kid] = true
				v.addFinding(Finding{Kind: KindStatusKeyChange, Origin: gw, Detail: fmt.Sprintf("status signed by kid %x, trusted on first use was %x; not trusted", signed.Kid[:8], first[:8])})
			}
		}
		return
	}
	if len(v.tofu) >= v.opts.MaxLogs {
		v.log.Warn("verify: too many gateways to trust on first use", "gateway", gw)
		return
	}
	var m map[uint64]any
	if err := reading.Unmarshal(signed.Payload, &m); err != nil {
		v.log.Warn("verify: status payload does not decode", "gateway", gw, "err", err)
		return
	}
	var pub ed25519.PublicKey
	for _, val := range m {
		if b, ok := val.([]byte); ok && len(b) == ed25519.PublicKeySize && seal.KeyID(b) == signed.Kid {
			pub = ed25519.PublicKey(bytes.Clone(b))
			break
		}
	}
	if pub == nil {
		v.log.Warn("verify: status message carries no public key for its kid", "gateway", gw)
		return
	}
	if err := signed.Verify(pub); err != nil {
		v.log.Warn("verify: status message does not verify under its own key", "gateway", gw, "err", err)
		return
	}
	v.tofu[gw] = signed.Kid
	v.keys[signed.Kid] = pub
	v.trustForGateway(gw, signed.Kid)
	v.log.Info("verify: trusting key on first use", "gateway", gw, "kid", seal.KidString(signed.Kid))
}

func (v *Verifier) trustForGateway(gw string, kid [32]byte) {
	m := v.gwKeys[gw]
	if m == nil {
		m = make(map[[32]byte]bool)
		v.gwKeys[gw] = m
	}
	if !m[kid] {
		m[kid] = true
		v.keysDirty = true
	}
}

func (v *Verifier) authorized(gw string, kid [32]byte) bool {
	return v.trusted[kid] || v.gwKeys[gw][kid]
}

func (v *Verifier) logFor(b *reading.Block, gw string) *logState {
	k := logKey{b.Origin, b.LogID}
	if l := v.logs[k]; l != nil {
		return l
	}
	if len(v.logs) >= v.opts.MaxLogs {
		v.addFinding(blockFinding(KindLogLimit, b, fmt.Sprintf("already tracking %d logs; block not verified", len(v.logs))))
		return nil
	}
	l := &logState{origin: b.Origin, gw: gw, id: b.LogID, idHex: hex.EncodeToString(b.LogID[:])}
	v.logs[k] = l
	if v.superseded[k] {
		l.superseded = true
	}
	return l
}
