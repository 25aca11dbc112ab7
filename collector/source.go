package collector

import (
	"context"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Source is one connection to one device or server. It is the only exported contract of the
// collector: protocol packages implement it, the Poller runs it.
type Source interface {
	// Name is the source's name from the config (the stream name, the tag prefix).
	Name() string
	// Read performs exactly one poll and honours ctx's deadline. It returns a reading for
	// every configured tag it could attempt (Bad readings included, never zero-filled) and a
	// non-nil error when the device or the connection failed, so the Poller backs off.
	Read(ctx context.Context) ([]reading.Reading, error)
	// Close releases the connection. The Poller never calls it.
	Close() error
}

// Batch is the outcome of one poll: the readings, the error, or both (a poll that failed
// half-way returns the readings it has, the rest marked Bad).
type Batch struct {
	Source   string
	Readings []reading.Reading
	Err      error
	Start    time.Time     // when the poll began (gateway clock)
	Duration time.Duration // how long Read took
}
