package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mrv-agent/mrv-agent/buffer"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/uplink"
)

// statusReadTimeout bounds how long a start waits to read its own retained status back.
const statusReadTimeout = 2 * time.Second

// checkLineage reads the agent's own retained status message (a birth, or the death the
// broker published as its will) back from the broker and compares the heads it names with
// the buffer's (ARCHITECTURE.md "Buffer"; LIBRARIES.md §9):
//   - a stream the buffer has no head for, but the status names, lost its buffer: its new
//     log's genesis names the previous log's last seq and hash;
//   - a stream whose stored head is behind what the status names under the same log_id has
//     been rolled back (bbolt fell back to an older meta page): its seqs would be reused, so
//     the buffer is renamed aside and every stream starts a new log.
//
// An unreachable broker, no retained message, or one this key cannot verify only means the
// check is skipped; it is logged.
func (a *Agent) checkLineage(ucfg uplink.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), statusReadTimeout)
	defer cancel()
	payload, err := uplink.FetchRetained(ctx, ucfg, uplink.StatusTopic(a.cfg.Gateway.Site, a.cfg.Gateway.ID))
	switch {
	case errors.Is(err, uplink.ErrNoRetained):
		return nil
	case err != nil:
		a.log.Warn("could not read own retained status; buffer rollback check skipped", "err", err)
		return nil
	}
	msg, err := a.openStatus(payload)
	if err != nil {
		a.log.Warn("own retained status unusable; buffer rollback check skipped", "err", err)
		return nil
	}
	heads := a.store.Heads()
	a.prevHeads = make(map[string]reading.StreamHead, len(msg.Heads))
	rolledBack := ""
	for _, h := range msg.Heads {
		a.prevHeads[h.Stream] = h
		if mine, ok := heads[h.Stream]; ok && string(mine.LogID[:]) == string(h.LogID) && mine.NextSeq < h.NextSeq {
			rolledBack = fmt.Sprintf("stream %s: buffer at seq %d, but seq %d was already sealed and announced", h.Stream, mine.NextSeq, h.NextSeq)
		}
	}
	if rolledBack == "" {
		return nil
	}
	a.log.Error("buffer rolled back; moving it aside and starting new logs", "reason", rolledBack)
	return a.replaceBuffer()
}

// openStatus verifies a status message under the agent's key and decodes it.
func (a *Agent) openStatus(payload []byte) (*reading.StatusMessage, error) {
	sg, err := seal.Parse(payload)
	if err != nil {
		return nil, err
	}
	if sg.ContentType != seal.ContentTypeStatus {
		return nil, fmt.Errorf("content type %q", sg.ContentType)
	}
	if err := sg.Verify(a.key.Public); err != nil {
		return nil, err
	}
	var m reading.StatusMessage
	if err := reading.Unmarshal(sg.Payload, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// replaceBuffer renames the buffer file aside (crash-safely) and opens a fresh one.
func (a *Agent) replaceBuffer() error {
	path := a.cfg.Buffer.Path
	if err := a.store.Close(); err != nil {
		return err
	}
	aside := fmt.Sprintf("%s.rollback-%d", path, time.Now().Unix())
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("move rolled-back buffer aside: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	a.log.Error("buffer moved aside", "path", aside)
	var err error
	a.store, err = a.openBuffer()
	return err
}

func (a *Agent) openBuffer() (*buffer.Store, error) {
	return buffer.Open(a.cfg.Buffer.Path, buffer.Options{
		MaxBytes: int64(a.cfg.Buffer.MaxBytes),
		Retain:   a.cfg.Buffer.Retain.D(),
		Logger:   a.log.With("component", "buffer"),
	})
}
