package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// metaKid is the buffer's record of the key in force: the kid written in the same commit
// as the key-rotation records, so that a crash between that commit and the key files'
// rename is completed at the next start instead of signing with the wrong key.
const metaKid = "kid"

// NextKeyPath is where `mrv-agent rotate-key` writes the next key for a key file.
func NextKeyPath(keyFile string) string { return keyFile + ".next" }

// Key rotation (ARCHITECTURE.md "Keys"): rotate-key writes the next key to
// NextKeyPath(key_file). At its next tick the pipeline finds it, seals a key-rotation record
// (new kid and public key, signed by the old key) as the last record of a block in every
// stream and records the new kid in the same commit; after the commit it signs with the new
// key and renames the files (next -> current). The old private key is gone after that.

// reconcileKey checks that the loaded key is the key in force for the stored streams, and
// completes a rotation that committed but did not rename its files.
func (a *Agent) reconcileKey() error {
	kid, err := a.store.Meta(metaKid)
	if err != nil {
		return fmt.Errorf("read key in force: %w", err)
	}
	if kid == nil || bytes.Equal(kid, a.key.Kid[:]) {
		return nil
	}
	next, err := seal.LoadKey(NextKeyPath(a.cfg.KeyFile))
	if err == nil && bytes.Equal(kid, next.Kid[:]) {
		if err := promoteNextKey(a.cfg.KeyFile); err != nil {
			return err
		}
		a.key = next
		a.log.Info("completed an interrupted key rotation", "kid", seal.KidString(next.Kid))
		return nil
	}
	return fmt.Errorf("key file %s holds key %x…, but the streams in %s are signed by key %x… since the last rotation: restore that key file",
		a.cfg.KeyFile, a.key.Kid[:8], a.cfg.Buffer.Path, kid[:min(8, len(kid))])
}

// promoteNextKey renames the next key files over the current ones (public key first, so a
// crash in between leaves the next private key in place to be promoted again).
func promoteNextKey(keyFile string) error {
	next := NextKeyPath(keyFile)
	if err := os.Rename(next+".pub", keyFile+".pub"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("promote next key: %w", err)
	}
	if err := os.Rename(next, keyFile); err != nil {
		return fmt.Errorf("promote next key: %w", err)
	}
	return syncDir(filepath.Dir(keyFile))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// rotationRecord returns the key-rotation record to seal at this tick, or nil. It looks
// for the next key file at every tick (a stat), so `rotate-key` needs no signal.
func (a *Agent) rotationRecord(now time.Time) *reading.Record {
	if a.nextKey == nil {
		path := NextKeyPath(a.cfg.KeyFile)
		if _, err := os.Stat(path); err != nil {
			return nil
		}
		k, err := seal.LoadKey(path)
		if err != nil {
			if msg := err.Error(); msg != a.nextKeyErr {
				a.nextKeyErr = msg
				a.log.Error("next key unusable; rotation not started", "err", err)
			}
			return nil
		}
		if k.Kid == a.key.Kid {
			return nil
		}
		a.nextKey, a.nextKeyErr = k, ""
		a.log.Info("key rotation starting", "old_kid", seal.KidString(a.key.Kid), "new_kid", seal.KidString(k.Kid))
	}
	return &reading.Record{Kind: reading.KindKeyRotation, Time: now.UnixNano(),
		Body: &reading.KeyRotationBody{Kid: slices.Clone(a.nextKey.Kid[:]), PublicKey: slices.Clone([]byte(a.nextKey.Public))}}
}

// finishRotation runs after the commit that carried the key-rotation records.
func (a *Agent) finishRotation() {
	old := a.key
	a.key, a.nextKey = a.nextKey, nil
	a.sealer.SetKey(a.key)
	a.keyNow.Store(a.key)
	if err := promoteNextKey(a.cfg.KeyFile); err != nil {
		// The streams are already signed by the new key; the next start completes the rename.
		a.log.Error("key rotated but its files were not renamed", "err", err)
	}
	a.log.Info("key rotated", "old_kid", seal.KidString(old.Kid), "new_kid", seal.KidString(a.key.Kid))
}

// RotateOffline performs the key rotation prepared at NextKeyPath on the buffer of an agent
// that is not running: it seals the key-rotation records (and the restart records any start
// seals) in one commit and closes the agent. Call it instead of Run.
func (a *Agent) RotateOffline() error {
	defer a.store.Close()
	defer a.closeSources()
	if a.rotationRecord(a.now()) == nil {
		return fmt.Errorf("no usable next key at %s", NextKeyPath(a.cfg.KeyFile))
	}
	if err := a.tick(); err != nil {
		return err
	}
	if a.nextKey != nil {
		return errors.New("rotation not committed")
	}
	return nil
}
