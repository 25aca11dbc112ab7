package verify

import (
	"fmt"
	"slices"
	"sort"

	"github.com/mrv-agent/mrv-agent/seal"
)

// holeAt returns the open hole of l that holds seq.
func (l *logState) holeAt(seq uint64) *hole {
	for _, h := range l.holes {
		if h.cursor <= h.last && seq >= h.first && seq <= h.last {
			return h
		}
	}
	return nil
}

// insertHist records a block accepted out of order (it filled a hole) in seq order.
func (l *logState) insertHist(a accepted) {
	i := sort.Search(len(l.hist), func(i int) bool { return l.hist[i].first > a.first })
	a.env = nil // evidence is kept for the most recent blocks only
	l.hist = slices.Insert(l.hist, i, a)
}

// fill handles a validly signed block that arrived after the verifier skipped over its seqs
// (typically one resent on request): the hole is followed like a small log from its start.
// A block at the hole's cursor whose prev links to the block before it, signed by the key in
// force there, is accepted; blocks ahead of the cursor wait (bounded) for the ones before
// them. When the hole is filled up to its end, the block after the hole must link to the
// last one filled, and the gap no longer counts.
func (v *Verifier) fill(l *logState, h *hole, p *pending) {
	b := p.blk
	switch {
	case b.LastSeq() > h.last:
		v.addFinding(blockFinding(KindLate, b, fmt.Sprintf("overlaps the end of gap %d..%d and the blocks accepted after it; not checked", h.first, h.last)))
		return
	case b.FirstSeq < h.cursor:
		v.addFinding(blockFinding(KindLate, b, "behind the part of the gap already filled; not checked"))
		return
	case b.FirstSeq > h.cursor:
		i := sort.Search(len(h.waiting), func(i int) bool { return h.waiting[i].blk.FirstSeq > b.FirstSeq })
		for j := i - 1; j >= 0 && h.waiting[j].blk.FirstSeq == b.FirstSeq; j-- {
			if h.waiting[j].hash == p.hash {
				v.sum.Duplicates++
				return
			}
		}
		if len(h.waiting) >= v.opts.ReorderWindow || v.waitBytes+len(p.env) > v.opts.MaxWaitingBytes {
			v.addFinding(blockFinding(KindLate, b, fmt.Sprintf("inside gap %d..%d but too far ahead of its filled part; not checked", h.first, h.last)))
			return
		}
		h.waiting = slices.Insert(h.waiting, i, p)
		v.waitBytes += len(p.env)
		return
	}
	v.fillAt(l, h, p)
	v.drainHole(l, h)
}

// drainHole fills h from its waiting blocks while they are at its cursor.
func (v *Verifier) drainHole(l *logState, h *hole) {
	for len(h.waiting) > 0 && h.cursor <= h.last && h.waiting[0].blk.FirstSeq <= h.cursor {
		q := h.waiting[0]
		h.waiting = h.waiting[1:]
		v.waitBytes -= len(q.env)
		if q.blk.FirstSeq == h.cursor {
			v.fillAt(l, h, q)
		} else {
			v.addFinding(blockFinding(KindLate, q.blk, "behind the part of the gap already filled; not checked"))
		}
	}
	if h.cursor > h.last {
		for _, q := range h.waiting {
			v.waitBytes -= len(q.env)
		}
		h.waiting = nil
	}
}

// fillAt accepts p at h.cursor if its key and chain link check out.
func (v *Verifier) fillAt(l *logState, h *hole, p *pending) {
	b := p.blk
	if p.signed.Kid != h.kid {
		v.addFinding(blockFinding(KindWrongKey, b, fmt.Sprintf("resent block signed by kid %x, the key in force is %x", p.signed.Kid[:8], h.kid[:8])))
		return
	}
	if b.Prev != h.cursorHash {
		v.addFinding(blockFinding(KindChainBreak, b, fmt.Sprintf("resent block has prev %x, the block before it has hash %x", b.Prev[:8], h.cursorHash[:8])))
		return
	}
	undeclared := len(h.uncovered) > 0
	l.insertHist(accepted{first: b.FirstSeq, last: b.LastSeq(), hash: p.hash})
	v.sum.Blocks++
	if nk, ok := v.emit(l, b); ok {
		h.kid = nk
	}
	h.cursor = b.LastSeq() + 1
	h.cursorHash = p.hash
	h.uncovered = subtract(h.uncovered, seqRange{b.FirstSeq, b.LastSeq()})
	if h.cursor <= h.last {
		if !h.skipped {
			h.first = h.cursor
		}
		if undeclared && len(h.uncovered) == 0 {
			v.sum.GapsUndeclared--
			v.sum.GapsDeclared++
		}
		return
	}
	// Filled to its end.
	filledFrom := h.first
	if h.skipped {
		// The start of the hole stays a declared gap (a gap-seq record, e.g. expired, whose
		// last hash the filled part linked to); the rest was filled.
		filledFrom = h.skipTo + 1
		if undeclared {
			v.sum.GapsUndeclared--
			v.sum.GapsDeclared++
		}
	} else {
		if undeclared {
			v.sum.GapsUndeclared--
		} else {
			v.sum.GapsDeclared--
		}
		if i := slices.Index(l.holes, h); i >= 0 {
			l.holes = slices.Delete(l.holes, i, i+1)
		}
	}
	v.sum.GapsFilled++
	oldLast := h.last
	v.addFinding(Finding{Kind: KindGapFilled, Origin: l.origin, LogID: l.idHex, First: filledFrom, Last: oldLast, Detail: "late (resent) blocks filled the gap; the chain links on both sides"})
	if h.skipped {
		// The declared part's last hash was followed by the filled chain: checked.
		h.last = h.skipTo
		h.uncovered = nil
		h.haveDeclHash, h.hashChecked = true, true
	}
	switch {
	case h.haveAfter:
		if h.afterPrev != h.cursorHash {
			v.addFinding(Finding{Kind: KindChainBreak, Origin: l.origin, LogID: l.idHex, First: oldLast + 1, Last: oldLast + 1,
				Detail: fmt.Sprintf("the block after gap %d..%d has prev %x, the last block resent into it has hash %x", filledFrom, oldLast, h.afterPrev[:8], h.cursorHash[:8])})
		}
		if h.kidAfter != h.kid {
			v.addFinding(Finding{Kind: KindWrongKey, Origin: l.origin, LogID: l.idHex, First: oldLast + 1, Last: oldLast + 1,
				Detail: fmt.Sprintf("the block after gap %d..%d is signed by kid %x, the key in force there is %x", filledFrom, oldLast, h.kidAfter[:8], h.kid[:8])})
		}
	case l.afterHole == h:
		// Nothing accepted after the hole yet: the log simply continues from the filled part.
		l.afterHole = nil
		l.lastHash = h.cursorHash
		l.kid = h.kid
	}
	v.log.Info("verify: gap filled", "origin", l.origin, "log_id", l.idHex, "last", oldLast, "kid", seal.KidString(h.kid))
}

// flushHoleWindows reports the late blocks still waiting inside holes at Finish.
func (v *Verifier) flushHoleWindows() {
	for _, l := range v.logs {
		for _, h := range l.holes {
			for _, q := range h.waiting {
				v.waitBytes -= len(q.env)
				v.addFinding(blockFinding(KindLate, q.blk, fmt.Sprintf("inside gap %d..%d, waited in vain for the blocks before it; not checked", h.first, h.last)))
			}
			h.waiting = nil
		}
	}
}
