package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/collector"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

func newIdleAgent(t *testing.T, now func() time.Time) *Agent {
	t.Helper()
	bed := agenttest.New(t)
	cfg, err := config.Load(bed.ConfigFile(t, bed.Broker.URL()))
	require.NoError(t, err)
	a, err := New(cfg, Options{Now: now})
	require.NoError(t, err)
	t.Cleanup(func() {
		a.closeSources()
		require.NoError(t, a.store.Close())
	})
	return a
}

func TestClockStepSealsGapTime(t *testing.T) {
	wall := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	a := newIdleAgent(t, func() time.Time { return wall })
	a.checkClock(wall)
	for _, st := range a.streams {
		st.pending = nil
	}
	a.checkClock(wall.Add(200 * time.Millisecond)) // a slew-sized difference: no step
	for _, st := range a.streams {
		require.Empty(t, st.pending)
	}

	stepped := wall.Add(time.Hour)
	a.checkClock(stepped)
	for name, st := range a.streams {
		require.Len(t, st.pending, 1, name)
		g, ok := st.pending[0].Body.(*reading.GapTimeBody)
		require.True(t, ok)
		require.Equal(t, reading.ReasonClockStep, g.Reason)
		require.Equal(t, stepped.UnixNano(), g.To)
		require.InDelta(t, float64(wall.UnixNano()), float64(g.From), float64(time.Second), "from where the clock should have been")
		st.pending = nil
	}

	back := stepped.Add(-2 * time.Hour)
	a.checkClock(back)
	for name, st := range a.streams {
		require.Len(t, st.pending, 1, name)
		g := st.pending[0].Body.(*reading.GapTimeBody)
		require.Less(t, g.From, g.To, "a backward step is declared as an ordered interval")
		require.Equal(t, back.UnixNano(), g.From)
	}
}

func TestTagTimeGoingBackwardsIsFlagged(t *testing.T) {
	a := newIdleAgent(t, nil)
	batch := func(ts ...int64) collector.Batch {
		b := collector.Batch{Source: "kiln1", Start: time.Unix(0, ts[0])}
		for _, tt := range ts {
			b.Readings = append(b.Readings, reading.Reading{Tag: "kiln1.power", Unit: "kW", Time: tt, HasValue: true})
		}
		return b
	}
	st := a.streams["kiln1"]
	st.pending = nil
	a.accept(batch(100, 200))
	a.accept(batch(150, 300))
	var flags []reading.Flag
	for _, rec := range st.pending {
		r, ok := rec.Reading()
		require.True(t, ok)
		flags = append(flags, r.Quality.Flags)
	}
	require.Equal(t, []reading.Flag{0, 0, reading.FlagClockBackwards, 0}, flags)
}
