package agent

import (
	"slices"
	"strings"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// statusMessage builds and signs a birth or death message from the buffer's heads (a
// snapshot taken under the buffer's lock, so it is safe from the uplink's goroutine).
func (a *Agent) statusMessage(kind string) ([]byte, error) {
	key := a.keyNow.Load()
	m := reading.StatusMessage{
		Kind:      kind,
		Epoch:     a.store.Epoch(),
		Kid:       slices.Clone(key.Kid[:]),
		PublicKey: slices.Clone([]byte(key.Public)),
		Version:   a.ver,
		Clock:     ClockState(),
		Time:      a.now().UnixNano(),
	}
	for name, h := range a.store.Heads() {
		m.Heads = append(m.Heads, reading.StreamHead{Stream: name, LogID: slices.Clone(h.LogID[:]), NextSeq: h.NextSeq, LastHash: slices.Clone(h.LastHash[:])})
	}
	slices.SortFunc(m.Heads, func(x, y reading.StreamHead) int { return strings.Compare(x.Stream, y.Stream) })
	payload, err := reading.Marshal(m)
	if err != nil {
		return nil, err
	}
	return key.Sign(payload, seal.ContentTypeStatus)
}

func (a *Agent) birth() ([]byte, error) { return a.statusMessage(reading.StatusBirth) }

// death is signed at every connect and becomes the connection's will: it carries the heads
// as they stood then, so that even after a crash the retained status names the streams'
// chains.
func (a *Agent) death() ([]byte, error) { return a.statusMessage(reading.StatusDeath) }
