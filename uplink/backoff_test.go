package uplink

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBackoff(t *testing.T) {
	b := newBackoff(200*time.Millisecond, 30*time.Second)
	limits := []time.Duration{200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000}
	for i, l := range limits {
		l *= time.Millisecond
		d := b.next()
		require.GreaterOrEqual(t, d, l/2, "step %d", i)
		require.LessOrEqual(t, d, l, "step %d", i)
	}
	b.reset()
	require.LessOrEqual(t, b.next(), 200*time.Millisecond)
}

func TestBucket(t *testing.T) {
	require.Zero(t, newBucket(0).take(time.Now()), "no limit")

	b := newBucket(10)
	now := time.Unix(1000, 0)
	for i := range 10 {
		require.Zero(t, b.take(now), "burst %d", i)
	}
	wait := b.take(now)
	require.InDelta(t, 100*time.Millisecond, wait, float64(time.Millisecond))
	now = now.Add(wait)
	require.Zero(t, b.take(now))
	require.Positive(t, b.take(now))
	// A long idle time refills at most the burst.
	now = now.Add(time.Hour)
	for range 10 {
		require.Zero(t, b.take(now))
	}
	require.Positive(t, b.take(now))
}
