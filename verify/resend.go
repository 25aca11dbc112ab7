package verify

import (
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Bounds of the verifier's own resend requests: anyone may send them, but this verifier
// sends few.
const (
	resendBurst       = 4           // requests per gateway per resendPeriod
	resendPeriod      = time.Second // the rate window
	maxResendAttempts = 3           // requests per gap
	maxResendGateways = 10000       // rate windows remembered
)

type resendWindow struct {
	start time.Time
	n     int
}

// allowResend applies the per-gateway rate limit.
func (v *Verifier) allowResend(gw string, now time.Time) bool {
	w := v.resendWin[gw]
	if w == nil {
		if len(v.resendWin) >= maxResendGateways {
			clear(v.resendWin)
		}
		w = &resendWindow{start: now}
		v.resendWin[gw] = w
	}
	if now.Sub(w.start) >= resendPeriod || now.Before(w.start) {
		w.start, w.n = now, 0
	}
	if w.n >= resendBurst {
		return false
	}
	w.n++
	return true
}

// resends asks the gateways for the undeclared parts of the holes, at most
// maxResendAttempts times per hole, Options.ResendRetry apart, within the rate limit. The
// blocks that come back fill the holes (fill); a gap-seq the agent seals for what it no
// longer has declares them.
func (v *Verifier) resends(now time.Time) {
	if v.opts.Resend == nil {
		clear(v.unresolved)
		return
	}
	for l := range v.unresolved {
		open := false
		for _, h := range l.holes {
			if len(h.uncovered) == 0 || h.cursor > h.last {
				continue
			}
			open = true
			if h.reqs >= maxResendAttempts || (h.reqs > 0 && now.Sub(h.lastReq) < v.opts.ResendRetry) {
				continue
			}
			if !v.allowResend(l.gw, now) {
				break
			}
			v.requestResend(l, h.uncovered[0])
			h.reqs++
			h.lastReq = now
		}
		if !open {
			delete(v.unresolved, l)
		}
	}
}

func (v *Verifier) requestResend(l *logState, r seqRange) {
	site, gw, stream, err := reading.SplitOrigin(l.origin)
	if err != nil {
		return
	}
	if r.last-r.first >= reading.MaxResendSeqs {
		r.last = r.first + reading.MaxResendSeqs - 1
	}
	req := &reading.ResendRequest{Stream: stream, LogID: append([]byte(nil), l.id[:]...), First: r.first, Last: r.last}
	payload, err := reading.EncodeResendRequest(req)
	if err != nil {
		v.log.Warn("verify: resend request not encoded", "origin", l.origin, "err", err)
		return
	}
	v.sum.ResendRequests++
	v.log.Info("verify: resend requested", "origin", l.origin, "log_id", l.idHex, "first", r.first, "last", r.last)
	v.opts.Resend(reading.ResendTopic(site, gw), payload)
}
