package agent

import (
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// maxPendingRecords bounds the records a stream holds while commits fail (a full disk, an
// I/O error): beyond it the oldest readings are dropped and declared by a gap-time record
// (reason buffer-unavailable) in the first commit that succeeds. A variable for tests.
var maxPendingRecords = 100_000

// pendingLoss is the time span of the readings a stream dropped at the pending cap.
type pendingLoss struct {
	n        int   // readings counted into the span
	from, to int64 // Unix ns: earliest reading time, latest + 1 (the gap is [from, to))
}

func (l *pendingLoss) add(t int64) {
	if l.n == 0 || t < l.from {
		l.from = t
	}
	if l.n == 0 || t+1 > l.to {
		l.to = t + 1
	}
	l.n++
}

// record is the gap-time record declaring the loss, or nil if nothing was dropped.
func (l *pendingLoss) record(now time.Time) *reading.Record {
	if l.n == 0 {
		return nil
	}
	return &reading.Record{Kind: reading.KindGapTime, Time: now.UnixNano(),
		Body: &reading.GapTimeBody{From: l.from, To: l.to, Reason: reading.ReasonBufferUnavailable}}
}

// commitsStalled reports whether no commit succeeded for two seal intervals: only then are
// pending records capped (a healthy pipeline at a high rate holds a whole interval's worth).
func (a *Agent) commitsStalled() bool {
	return a.now().Sub(a.lastCommit) > 2*a.cfg.Blocks.MaxAge.D()
}

// capPending drops the oldest readings of a stream whose pending records exceed
// maxPendingRecords, down to 90 % of it (so the copy is amortised), keeping every other
// record (gap and lifecycle records) in order. The dropped span is widened to whole
// timestamps: every pending reading whose time lies in it goes too, so the gap-time
// record covers exactly the readings that are missing.
func (a *Agent) capPending(st *stream) {
	if len(st.pending) <= maxPendingRecords {
		return
	}
	first := st.lost.n == 0
	drop := len(st.pending) - maxPendingRecords*9/10
	for _, r := range st.pending {
		if drop == 0 {
			break
		}
		if r.Kind == reading.KindReading {
			st.lost.add(r.Time)
			drop--
		}
	}
	kept := st.pending[:0]
	for _, r := range st.pending {
		if r.Kind == reading.KindReading && r.Time >= st.lost.from && r.Time < st.lost.to {
			continue
		}
		kept = append(kept, r)
	}
	clear(st.pending[len(kept):])
	st.pending = kept
	if first {
		a.log.Error("buffer commits keep failing: dropping the oldest pending readings (declared as a gap-time once a commit succeeds)",
			"stream", st.Name, "cap", maxPendingRecords)
	}
}
