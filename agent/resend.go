package agent

import (
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// Resend requests (ARCHITECTURE.md "Uplink"): a verifier publishes a reading.ResendRequest
// on mrv/v1/{site}/{gateway}/cmd/resend. Anyone who can publish there can send one, so the
// agent bounds them: at most resendQueue requests wait, they are served at most
// resendBurst at once and resendRate per second after that, the range is clamped to what the
// log has sealed, and each is answered once.
const (
	resendQueue = 64
	resendRate  = 1.0 // requests per second, sustained
	resendBurst = 5
)

// onResend is the uplink's callback (paho's goroutine): it only hands the payload over.
func (a *Agent) onResend(payload []byte) {
	select {
	case a.resendReqs <- payload:
	default:
		a.resendDropped.Add(1)
	}
}

// handleResend answers one request in the pipeline goroutine: it republishes what the
// buffer retains and seals a gap-seq record (reason expired) for what it no longer has.
func (a *Agent) handleResend(payload []byte, now time.Time) {
	if !a.resendLimit.allow(now) {
		a.resendDropped.Add(1)
		return
	}
	req, err := reading.DecodeResendRequest(payload)
	if err != nil {
		a.log.Debug("resend request refused", "err", err)
		return
	}
	st, ok := a.streams[req.Stream]
	if !ok || string(req.LogID) != string(st.LogID[:]) || req.First >= st.NextSeq {
		a.log.Debug("resend request for nothing this agent has", "stream", req.Stream, "first", req.First)
		return
	}
	last := min(req.Last, st.NextSeq-1)
	envs, err := a.store.Next(req.Stream, req.First, 1)
	if err != nil {
		a.log.Warn("resend: read buffer", "stream", req.Stream, "err", err)
		return
	}
	from := req.First
	switch {
	case len(envs) == 0:
		// Nothing at or after First is retained (only possible for sealed blocks not yet
		// committed, which cannot be asked for, or after retention): all of it expired.
		a.declareExpired(st, req.First, last, nil, now)
		return
	case envs[0].FirstSeq > req.First:
		// Retention removed the blocks before the first one kept; that block's prev is the
		// chain hash of the last removed one.
		expiredLast := min(envs[0].FirstSeq-1, last)
		a.declareExpired(st, req.First, expiredLast, prevHash(envs[0].Bytes), now)
		from = envs[0].FirstSeq
	}
	if from <= last && !a.pub.Resend(req.Stream, from, last) {
		a.resendDropped.Add(1)
		return
	}
	a.log.Info("resend requested", "stream", req.Stream, "first", req.First, "last", last)
}

func (a *Agent) declareExpired(st *stream, first, last uint64, lastHash []byte, now time.Time) {
	if first > last {
		return
	}
	a.log.Info("resend asked for expired blocks", "stream", st.Name, "first", first, "last", last)
	st.pending = append(st.pending, reading.Record{Kind: reading.KindGapSeq, Time: now.UnixNano(),
		Body: &reading.GapSeqBody{First: first, Last: last, Reason: reading.ReasonExpired, LastHash: lastHash}})
}

// prevHash returns the prev field of a stored envelope, or nil if it cannot be read.
func prevHash(envelope []byte) []byte {
	sg, err := seal.Parse(envelope)
	if err != nil {
		return nil
	}
	b, err := reading.DecodeBlock(sg.Payload)
	if err != nil {
		return nil
	}
	return b.Prev[:]
}

// tokenBucket is a small rate limiter on the pipeline goroutine's clock.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *tokenBucket) allow(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
