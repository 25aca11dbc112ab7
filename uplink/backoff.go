package uplink

import (
	"math/rand/v2"
	"time"
)

// backoff yields exponentially growing delays with jitter: the n-th delay is drawn
// uniformly from [d/2, d] where d = min(max, min·2ⁿ).
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// bucket is a token bucket of blocks: rate tokens per second, at most rate tokens stored.
// A nil bucket never limits.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(rate int) *bucket {
	if rate <= 0 {
		return nil
	}
	return &bucket{rate: float64(rate), tokens: float64(rate)}
}

// take removes one token and returns 0, or returns how long until one is available.
func (b *bucket) take(now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	if !b.last.IsZero() {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
	return max(wait, time.Millisecond)
}
