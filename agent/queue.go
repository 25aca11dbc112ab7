package agent

import (
	"github.com/mrv-agent/mrv-agent/buffer"
	"github.com/mrv-agent/mrv-agent/reading"
)

// queue presents the buffer to the uplink as the uplink's own Queue interface, so that
// neither package imports the other.
type queue struct{ s *buffer.Store }

// Streams returns the store's shared, sorted slice of names: the uplink asks for it at
// every fill, so it is not rebuilt each time.
func (q queue) Streams() []string { return q.s.StreamNames() }

func (q queue) Cursor(stream string) uint64 { return q.s.Published(stream) }

func (q queue) Next(stream string, from uint64, max int) ([]reading.Envelope, error) {
	return q.s.NextToPublish(stream, from, max)
}

func (q queue) MarkPublished(stream string, lastSeq uint64) { q.s.MarkPublished(stream, lastSeq) }
