package agent

import (
	"slices"

	"github.com/mrv-agent/mrv-agent/buffer"
	"github.com/mrv-agent/mrv-agent/reading"
)

// queue presents the buffer to the uplink as the uplink's own Queue interface, so that
// neither package imports the other.
type queue struct{ s *buffer.Store }

func (q queue) Streams() []string {
	heads := q.s.Heads()
	names := make([]string, 0, len(heads))
	for name := range heads {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (q queue) Cursor(stream string) uint64 { return q.s.Heads()[stream].Published }

func (q queue) Next(stream string, from uint64, max int) ([]reading.Envelope, error) {
	return q.s.Next(stream, from, max)
}

func (q queue) MarkPublished(stream string, lastSeq uint64) { q.s.MarkPublished(stream, lastSeq) }
