package agent

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

func TestCapPending(t *testing.T) {
	defer func(n int) { maxPendingRecords = n }(maxPendingRecords)
	maxPendingRecords = 100

	a := &Agent{log: slog.New(slog.DiscardHandler)}
	st := &stream{}
	st.Name = "kiln1"
	gap := reading.Record{Kind: reading.KindGapTime, Time: 5, Body: &reading.GapTimeBody{From: 1, To: 5, Reason: reading.ReasonSourceDown}}
	st.pending = append(st.pending, gap)
	// Polls of 3 readings sharing a timestamp: 10, 20, 30, ...
	for i := range 40 {
		for range 3 {
			st.pending = append(st.pending, reading.Record{Kind: reading.KindReading, Time: int64(10 * (i + 1)), Body: &reading.ReadingBody{}})
		}
	}
	a.capPending(st)
	require.LessOrEqual(t, len(st.pending), 90)
	require.Equal(t, gap, st.pending[0], "non-reading records are kept, in order")
	g := st.lost.record(time.Unix(0, 999))
	require.NotNil(t, g)
	body := g.Body.(*reading.GapTimeBody)
	require.Equal(t, reading.ReasonBufferUnavailable, body.Reason)
	require.Equal(t, int64(10), body.From)
	// 31 readings had to go: polls 10..100 (whole polls), 30 readings, and poll 110 started.
	require.Equal(t, int64(111), body.To, "[from, to) widened to whole timestamps")
	for _, r := range st.pending[1:] {
		require.False(t, r.Time >= body.From && r.Time < body.To, "kept reading at %d inside the gap", r.Time)
	}
	require.Len(t, st.pending, 1+3*(40-11))

	// Under the cap nothing happens.
	n := len(st.pending)
	a.capPending(st)
	require.Len(t, st.pending, n)
	require.Nil(t, (&pendingLoss{}).record(time.Now()))
}
