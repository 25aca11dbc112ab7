package verify

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// logState is the verification state of one log (origin + log_id).
type logState struct {
	origin string
	gw     string // {site}/{gateway}
	id     [16]byte
	idHex  string

	started  bool     // a first block was accepted
	next     uint64   // seq expected next
	lastHash [32]byte // hash of the last accepted envelope
	kid      [32]byte // key in force
	hasKid   bool
	lastTime int64 // latest record time of an accepted block (Unix ns)
	hasTime  bool
	// superseded: a later log of this origin names this one in its genesis
	superseded bool

	hist      []accepted // accepted blocks, ascending, the most recent History (up to 2×) of them
	waiting   []*pending // reorder window, ascending by FirstSeq, stable by arrival
	waitBytes int

	afterHole *hole   // set when the next block to accept follows a hole
	holes     []*hole // holes whose classification can still change
	declared  []declaredRange
	equivSeen map[[32]byte]struct{}
}

type accepted struct {
	first, last uint64
	hash        [32]byte
	env         []byte // nil once older than the last keepEnvelopes blocks
}

type seqRange struct{ first, last uint64 }

type declaredRange struct {
	seqRange
	lastHash [32]byte
	hasHash  bool
}

// hole is a seq range the verifier skipped over.
type hole struct {
	first, last  uint64
	uncovered    []seqRange // parts no gap-seq record declares yet
	afterPrev    [32]byte   // prev of the block accepted right after the hole
	haveAfter    bool
	declHash     [32]byte // LastHash of the gap-seq record that ends where the hole ends
	haveDeclHash bool
	hashChecked  bool

	// Filling from late (resent) blocks: the hole is followed like a small log from its
	// start. first moves up to cursor as blocks fill it.
	cursor     uint64     // next seq expected inside the hole
	cursorHash [32]byte   // hash of the block before cursor
	kid        [32]byte   // key in force at cursor
	kidAfter   [32]byte   // key of the block accepted right after the hole
	waiting    []*pending // late blocks of the hole ahead of cursor, ascending
	reqs       int        // resend requests sent for it
	lastReq    time.Time
	// skipped: a gap-seq record with a last hash declared seqs first..skipTo, and the
	// cursor moved past them (the agent resends what it retains after what expired).
	skipped bool
	skipTo  uint64
}

func (h *hole) finding(l *logState) Finding {
	f := Finding{Origin: l.origin, LogID: l.idHex, First: h.first, Last: h.last}
	if len(h.uncovered) == 0 {
		f.Kind = KindGapDeclared
		f.Detail = "declared by signed gap-seq records"
		return f
	}
	f.Kind = KindGapUndeclared
	if len(h.uncovered) == 1 && h.uncovered[0] == (seqRange{h.first, h.last}) {
		f.Detail = "no signed gap-seq record declares it"
		return f
	}
	parts := make([]string, 0, 4)
	for i, r := range h.uncovered {
		if i == 3 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%d..%d", r.first, r.last))
	}
	f.Detail = "not declared: " + strings.Join(parts, ", ")
	return f
}

// place routes a verified-or-parked block of l: behind the chain, or into the window.
func (v *Verifier) place(l *logState, p *pending) {
	if l.started && p.blk.FirstSeq < l.next {
		v.old(l, p)
		return
	}
	i := sort.Search(len(l.waiting), func(i int) bool { return l.waiting[i].blk.FirstSeq > p.blk.FirstSeq })
	for j := i - 1; j >= 0 && l.waiting[j].blk.FirstSeq == p.blk.FirstSeq; j-- {
		if l.waiting[j].hash == p.hash {
			v.sum.Duplicates++
			return
		}
	}
	l.waiting = append(l.waiting, nil)
	copy(l.waiting[i+1:], l.waiting[i:])
	l.waiting[i] = p
	v.dirty[l] = struct{}{}
	l.waitBytes += len(p.env)
	v.waitBytes += len(p.env)
	v.waitCount++
	v.waiting[l] = struct{}{}
	v.drain(l)
	for len(l.waiting) > v.opts.ReorderWindow {
		v.skip(l)
	}
	for v.waitBytes > v.opts.MaxWaitingBytes {
		t := l
		if len(t.waiting) == 0 {
			t = v.oldestWaiting()
		}
		if t == nil {
			break
		}
		v.skip(t)
	}
}

// drain accepts waiting blocks while the window's head is at (or behind) the next seq.
func (v *Verifier) drain(l *logState) {
	for len(l.waiting) > 0 && l.waiting[0].blk.FirstSeq <= l.next {
		p := l.waiting[0]
		l.waiting[0] = nil
		l.waiting = l.waiting[1:]
		l.waitBytes -= len(p.env)
		v.waitBytes -= len(p.env)
		v.waitCount--
		if p.blk.FirstSeq < l.next {
			v.old(l, p)
		} else {
			v.process(l, p)
		}
	}
	if len(l.waiting) == 0 {
		l.waiting = nil
		delete(v.waiting, l)
	}
}

// skip gives up waiting for the seqs before the window's head: before the first accepted
// block that is a join, after it a hole.
func (v *Verifier) skip(l *logState) {
	if len(l.waiting) == 0 {
		return
	}
	head := l.waiting[0].blk.FirstSeq
	v.dirty[l] = struct{}{}
	if head > l.next {
		if l.started {
			v.openHole(l, l.next, head-1)
		}
		l.next = head
	}
	v.drain(l)
}

func (v *Verifier) expire(now time.Time) {
	for l := range v.waiting {
		for len(l.waiting) > 0 && now.Sub(l.oldestRecv()) >= v.opts.ReorderTimeout {
			v.skip(l)
		}
	}
}

func (l *logState) oldestRecv() time.Time {
	t := l.waiting[0].recv
	for _, p := range l.waiting[1:] {
		if p.recv.Before(t) {
			t = p.recv
		}
	}
	return t
}

func (v *Verifier) oldestWaiting() *logState {
	var best *logState
	var bt time.Time
	for l := range v.waiting {
		if t := l.oldestRecv(); best == nil || t.Before(bt) {
			best, bt = l, t
		}
	}
	return best
}

func (v *Verifier) openHole(l *logState, first, last uint64) {
	h := &hole{first: first, last: last, uncovered: []seqRange{{first, last}}, cursor: first, cursorHash: l.lastHash, kid: l.kid}
	for _, d := range l.declared {
		h.uncovered = subtract(h.uncovered, d.seqRange)
		if d.last == h.last && d.hasHash {
			h.declHash, h.haveDeclHash = d.lastHash, true
		}
	}
	if len(h.uncovered) == 0 {
		v.sum.GapsDeclared++
	} else {
		v.sum.GapsUndeclared++
		v.unresolved[l] = struct{}{}
	}
	if len(l.holes) >= maxHoles {
		old := l.holes[0]
		l.holes = l.holes[1:]
		if len(v.findings)+len(v.retired) < maxFindings {
			v.retired = append(v.retired, old.finding(l))
		} else {
			v.sum.FindingsDropped++
		}
	}
	l.holes = append(l.holes, h)
	l.afterHole = h
	v.log.Info("verify: gap", "origin", l.origin, "log_id", l.idHex, "first", first, "last", last, "declared", len(h.uncovered) == 0)
}

// subtract removes r from the ranges rs.
func subtract(rs []seqRange, r seqRange) []seqRange {
	out := rs[:0:0]
	for _, x := range rs {
		if x.last < r.first || x.first > r.last {
			out = append(out, x)
			continue
		}
		if x.first < r.first {
			out = append(out, seqRange{x.first, r.first - 1})
		}
		if x.last > r.last {
			out = append(out, seqRange{r.last + 1, x.last})
		}
	}
	return out
}

// verifySig makes sure p is signed by a key this verifier knows, reporting it otherwise.
func (v *Verifier) verifySig(p *pending) bool {
	if p.verified {
		return true
	}
	pub, ok := v.keys[p.signed.Kid]
	if !ok {
		v.addFinding(blockFinding(KindUnknownKey, p.blk, fmt.Sprintf("kid %s is not a trusted key", seal.KidString(p.signed.Kid))))
		return false
	}
	if err := p.signed.Verify(pub); err != nil {
		v.addFinding(blockFinding(KindBadSignature, p.blk, err.Error()))
		return false
	}
	p.verified = true
	return true
}

// process checks and accepts the block at exactly l.next.
func (v *Verifier) process(l *logState, p *pending) {
	b := p.blk
	if !v.verifySig(p) {
		return
	}
	kid := p.signed.Kid
	var keyNote string
	switch {
	case l.hasKid && kid == l.kid:
	case (!l.hasKid || l.afterHole != nil) && v.authorized(l.gw, kid):
		if l.hasKid {
			keyNote = fmt.Sprintf("; key changed across the gap to kid %x", kid[:8])
		}
	case v.authorized(l.gw, kid):
		v.addFinding(blockFinding(KindWrongKey, b, fmt.Sprintf("signed by kid %x, the key in force is %x", kid[:8], l.kid[:8])))
		return
	default:
		v.addFinding(blockFinding(KindUnknownKey, b, fmt.Sprintf("kid %s is not trusted for %s", seal.KidString(kid), l.gw)))
		return
	}

	switch {
	case !l.started && b.FirstSeq == 0:
		if b.Prev != ([32]byte{}) {
			v.addFinding(blockFinding(KindChainBreak, b, "the first block of a log must have an all-zero prev"))
		}
		if g, ok := b.Records[0].Body.(*reading.GenesisBody); !ok {
			v.addFinding(blockFinding(KindChainBreak, b, fmt.Sprintf("seq 0 is a %s record, not genesis", b.Records[0].Kind)))
		} else if len(g.Kid) > 0 && string(g.Kid) != string(kid[:]) {
			v.addFinding(blockFinding(KindWrongKey, b, fmt.Sprintf("genesis names kid %x, block signed by %x", g.Kid, kid[:8])))
		}
	case !l.started:
		v.addFinding(blockFinding(KindJoined, b, fmt.Sprintf("first block seen of this log starts at seq %d; earlier blocks are not verified", b.FirstSeq)))
	case l.afterHole != nil:
		h := l.afterHole
		h.afterPrev, h.haveAfter = b.Prev, true
		h.kidAfter = kid
		v.checkHoleHash(l, h)
	case b.Prev != l.lastHash:
		v.addFinding(blockFinding(KindChainBreak, b, fmt.Sprintf("prev %x, the previous block's hash is %x", b.Prev[:8], l.lastHash[:8])))
	}
	if keyNote != "" {
		v.log.Info("verify: key changed across a gap", "origin", l.origin, "log_id", l.idHex, "kid", seal.KidString(kid))
	}

	l.started = true
	l.afterHole = nil
	l.kid, l.hasKid = kid, true
	l.next = b.FirstSeq + uint64(len(b.Records))
	l.lastHash = p.hash
	l.record(accepted{first: b.FirstSeq, last: b.LastSeq(), hash: p.hash, env: p.env}, v.opts.History)
	v.sum.Blocks++
	if nk, ok := v.emit(l, b); ok {
		l.kid = nk
	}
}

// emit hands the records of an accepted block to the callbacks, counts its readings, applies
// its gap-seq records and, when it ends with a valid key rotation, returns the new key.
func (v *Verifier) emit(l *logState, b *reading.Block) (newKid [32]byte, rotated bool) {
	v.dirty[l] = struct{}{}
	var rot *reading.KeyRotationBody
	for i, rec := range b.Records {
		if !l.hasTime || rec.Time > l.lastTime {
			l.lastTime, l.hasTime = rec.Time, true
		}
		seq := b.FirstSeq + uint64(i)
		if v.opts.OnRecord != nil {
			v.opts.OnRecord(RecordOut{Origin: b.Origin, LogID: b.LogID, Seq: seq, Record: rec})
		}
		switch body := rec.Body.(type) {
		case *reading.ReadingBody:
			v.sum.Readings++
			if v.opts.OnReading != nil {
				r, _ := rec.Reading()
				v.opts.OnReading(ReadingOut{Origin: b.Origin, LogID: b.LogID, Seq: seq, Reading: r})
			}
		case *reading.GapSeqBody:
			v.declare(l, b, seq, body)
		case *reading.KeyRotationBody:
			rot = body
		case *reading.GenesisBody:
			if len(body.PrevLogID) == 16 {
				pk := logKey{l.origin, [16]byte(body.PrevLogID)}
				if prev := v.logs[pk]; prev != nil {
					prev.superseded = true
					v.dirty[prev] = struct{}{}
				} else if len(v.superseded) < v.opts.MaxLogs {
					v.superseded[pk] = true
				}
			}
		}
	}
	if rot == nil {
		return newKid, false
	}
	if len(rot.PublicKey) != 32 || len(rot.Kid) != 32 || seal.KeyID(rot.PublicKey) != [32]byte(rot.Kid) {
		v.addFinding(blockFinding(KindBadRecord, b, "key-rotation record: kid is not the hash of its public key"))
		return newKid, false
	}
	nk := [32]byte(rot.Kid)
	v.keys[nk] = append([]byte(nil), rot.PublicKey...)
	v.trustForGateway(l.gw, nk)
	v.keysDirty = true
	v.log.Info("verify: key rotation", "origin", l.origin, "log_id", l.idHex, "from", b.LastSeq()+1, "kid", seal.KidString(nk))
	return nk, true
}

func (l *logState) record(a accepted, history int) {
	l.hist = append(l.hist, a)
	if n := len(l.hist); n > keepEnvelopes {
		l.hist[n-1-keepEnvelopes].env = nil
	}
	if len(l.hist) >= 2*history {
		n := copy(l.hist, l.hist[len(l.hist)-history:])
		clear(l.hist[n:])
		l.hist = l.hist[:n]
	}
}

// find returns the accepted block whose range holds seq.
func (l *logState) find(seq uint64) (accepted, bool) {
	i := sort.Search(len(l.hist), func(i int) bool { return l.hist[i].first > seq })
	if i == 0 {
		return accepted{}, false
	}
	a := l.hist[i-1]
	return a, seq <= a.last
}

// declare applies a gap-seq record at seq.
func (v *Verifier) declare(l *logState, b *reading.Block, seq uint64, g *reading.GapSeqBody) {
	if g.First > g.Last || g.Last >= seq {
		v.addFinding(blockFinding(KindBadRecord, b, fmt.Sprintf("gap-seq record at seq %d declares %d..%d", seq, g.First, g.Last)))
		return
	}
	d := declaredRange{seqRange: seqRange{g.First, g.Last}}
	if len(g.LastHash) == 32 {
		d.lastHash, d.hasHash = [32]byte(g.LastHash), true
	}
	if len(l.declared) >= maxDeclared {
		l.declared = l.declared[1:]
	}
	l.declared = append(l.declared, d)
	for _, h := range l.holes {
		was := len(h.uncovered) == 0
		h.uncovered = subtract(h.uncovered, d.seqRange)
		if d.last == h.last && d.hasHash && !h.haveDeclHash {
			h.declHash, h.haveDeclHash = d.lastHash, true
			v.checkHoleHash(l, h)
		}
		if !was && len(h.uncovered) == 0 {
			v.sum.GapsUndeclared--
			v.sum.GapsDeclared++
		}
		v.dirty[l] = struct{}{}
		if d.hasHash && d.first <= h.cursor && h.cursor <= d.last && d.last < h.last {
			h.cursor, h.cursorHash = d.last+1, d.lastHash
			h.skipped, h.skipTo = true, d.last
			v.drainHole(l, h)
		}
	}
}

// checkHoleHash follows the chain across a declared hole: the block after it must name the
// hash the gap-seq record gives for the last missing block.
func (v *Verifier) checkHoleHash(l *logState, h *hole) {
	if !h.haveAfter || !h.haveDeclHash || h.hashChecked {
		return
	}
	h.hashChecked = true
	if h.afterPrev != h.declHash {
		v.addFinding(Finding{Kind: KindChainBreak, Origin: l.origin, LogID: l.idHex, First: h.last + 1, Last: h.last + 1,
			Detail: fmt.Sprintf("the block after gap %d..%d has prev %x, the gap-seq record's last hash is %x", h.first, h.last, h.afterPrev[:8], h.declHash[:8])})
	}
}

// old handles a block that starts behind l.next: a duplicate, an equivocation, or too late
// to check.
func (v *Verifier) old(l *logState, p *pending) {
	b := p.blk
	a, found := l.find(b.FirstSeq)
	if found && a.first == b.FirstSeq && a.hash == p.hash {
		v.sum.Duplicates++
		return
	}
	if _, ok := l.equivSeen[p.hash]; ok {
		v.sum.Duplicates++
		return
	}
	if !v.verifySig(p) {
		return
	}
	if !v.authorized(l.gw, p.signed.Kid) {
		v.addFinding(blockFinding(KindUnknownKey, b, fmt.Sprintf("kid %s is not trusted for %s", seal.KidString(p.signed.Kid), l.gw)))
		return
	}
	if !found {
		if h := l.holeAt(b.FirstSeq); h != nil {
			v.fill(l, h, p)
			return
		}
		detail := "inside a gap the verifier skipped; not checked"
		switch {
		case len(l.hist) == 0 || b.FirstSeq < l.hist[0].first:
			detail = "before the first block verified or older than the retained history; not checked"
		}
		v.addFinding(blockFinding(KindLate, b, detail))
		return
	}
	if l.equivSeen == nil {
		l.equivSeen = make(map[[32]byte]struct{})
	}
	if len(l.equivSeen) >= maxEquivSeen {
		clear(l.equivSeen)
	}
	l.equivSeen[p.hash] = struct{}{}
	ev := Evidence{Origin: l.origin, LogID: l.id, Seq: b.FirstSeq, A: a.env, AHash: a.hash, B: p.env}
	detail := fmt.Sprintf("block %d..%d (sha256 %x) conflicts with the accepted block %d..%d (sha256 %x)",
		b.FirstSeq, b.LastSeq(), p.hash[:8], a.first, a.last, a.hash[:8])
	if v.opts.EvidenceDir != "" {
		files, err := v.writeEvidence(ev)
		ev.Files = files
		if err != nil {
			v.log.Error("verify: evidence not saved", "err", err)
			detail += "; evidence not saved: " + err.Error()
		} else {
			detail += "; evidence: " + strings.Join(files, ", ")
		}
	}
	if len(v.evidence) < maxEvidence {
		v.evidence = append(v.evidence, ev)
	}
	v.addFinding(blockFinding(KindEquivocation, b, detail))
}

// writeEvidence writes <dir>/<origin_>-<logid>-<seq>-a.cose (the accepted envelope, or
// -a.sha256 with its hash when it is no longer held) and -b.cose (-b2, -b3... for further
// variants of the same seq).
func (v *Verifier) writeEvidence(ev Evidence) ([]string, error) {
	base := filepath.Join(v.opts.EvidenceDir, fmt.Sprintf("%s-%x-%d", strings.ReplaceAll(ev.Origin, "/", "_"), ev.LogID, ev.Seq))
	var files []string
	aPath, aData := base+"-a.cose", ev.A
	if aData == nil {
		aPath, aData = base+"-a.sha256", []byte(fmt.Sprintf("%x\n", ev.AHash))
	}
	if _, err := os.Stat(aPath); err != nil {
		if err := seal.WriteFileAtomic(aPath, aData, 0o644); err != nil {
			return nil, err
		}
	}
	files = append(files, aPath)
	bPath := base + "-b.cose"
	for i := 2; ; i++ {
		if _, err := os.Stat(bPath); err != nil {
			break
		}
		if i > 1000 {
			return files, fmt.Errorf("evidence %s: too many variants", base)
		}
		bPath = fmt.Sprintf("%s-b%d.cose", base, i)
	}
	if err := seal.WriteFileAtomic(bPath, ev.B, 0o644); err != nil {
		return files, err
	}
	return append(files, bPath), nil
}
