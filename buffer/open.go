package buffer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// openAndLoad opens the bbolt file and rebuilds the in-memory state. Errors wrapping
// errCorrupt mean the file must be moved aside; the db is closed on every error.
func (s *Store) openAndLoad(opts Options) error {
	db, err := openBolt(s.path, opts.Timeout)
	if err != nil {
		return err
	}
	s.db = db
	if err := s.load(); err != nil {
		closeQuietly(db)
		s.db = nil
		return err
	}
	return nil
}

// openBolt opens the file under recover(): bbolt v1.5.0 can panic on garbled pages.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("open buffer %s: %w: bbolt panicked: %v", path, errCorrupt, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("open buffer %s: %w (is another mrv-agent running? file lock not acquired within %s: %w)", path, ErrInUse, timeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("open buffer %s: %w: %w", path, errCorrupt, err)
	default:
		return nil, fmt.Errorf("open buffer %s: %w", path, err)
	}
}

func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	_ = db.Close()
}

// load checks the file, reads heads, epoch, gaps and the block index, quarantines bad
// block values and commits the incremented epoch.
func (s *Store) load() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt panicked during load: %v", errCorrupt, r)
		}
	}()
	if err := s.check(); err != nil {
		return err
	}

	s.heads = make(map[string]Head)
	s.published = make(map[string]uint64)
	s.index = make(map[string][]entry)
	s.live, s.quarantined, s.droppedN = 0, 0, 0
	s.pendQ, s.pendD, s.takenKeys = nil, nil, nil
	s.lastDrop = make(map[string]gapRange)
	s.takenGaps, s.carries, s.handed = nil, nil, make(map[string]uint64)
	var epoch uint64
	var bad []badRun

	err = s.db.View(func(tx *bolt.Tx) error {
		if mb := tx.Bucket(bucketMeta); mb != nil {
			if v := mb.Get([]byte(metaFormat)); v != nil {
				if len(v) != 4 {
					return fmt.Errorf("%w: format marker is %d bytes", errCorrupt, len(v))
				}
				if f := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]); f != formatVersion && f != 1 {
					return fmt.Errorf("buffer format %d not supported (want %d)", f, formatVersion)
				}
			}
			if v := mb.Get([]byte(metaEpoch)); v != nil {
				e, err := decodeUint64Meta(v)
				if err != nil {
					return fmt.Errorf("%w: epoch: %w", errCorrupt, err)
				}
				epoch = e
			}
		}
		if hb := tx.Bucket(bucketHeads); hb != nil {
			if err := hb.ForEach(func(k, v []byte) error {
				h, err := decodeHead(v)
				if err != nil {
					return fmt.Errorf("%w: head %q: %w", errCorrupt, k, err)
				}
				s.heads[string(k)] = h
				s.published[string(k)] = h.Published
				return nil
			}); err != nil {
				return err
			}
		}
		if gb := tx.Bucket(bucketGaps); gb != nil {
			_ = gb.ForEach(func(k, v []byte) error {
				if len(k) > 0 && (k[0] == gapCarryDropped || k[0] == gapCarryQuarantined) {
					if c, err := decodeCarry(k, v); err == nil {
						s.carries = append(s.carries, c)
					} else {
						s.log.Error("unreadable carry record dropped", "key", fmt.Sprintf("%x", k), "err", err)
					}
					return nil
				}
				kind, g, err := decodeGap(k, v)
				switch {
				case err != nil:
					s.log.Error("unreadable gap record dropped", "key", fmt.Sprintf("%x", k), "err", err)
				case kind == gapQuarantined:
					s.pendQ = append(s.pendQ, g)
				case kind == gapDropped:
					s.pendD = append(s.pendD, g)
				case kind == gapLastDrop:
					if old, ok := s.lastDrop[g.Stream]; !ok || g.LastSeq > old.LastSeq {
						s.lastDrop[g.Stream] = g
					}
				}
				return nil
			})
		}
		if qb := tx.Bucket(bucketQuarantine); qb != nil {
			_ = qb.ForEachBucket(func(k []byte) error {
				s.quarantined += uint64(qb.Bucket(k).Stats().KeyN)
				return nil
			})
		}
		bb := tx.Bucket(bucketBlocks)
		if bb == nil {
			return nil
		}
		return bb.ForEachBucket(func(name []byte) error {
			stream := string(name)
			idx, runs := s.scanStream(bb.Bucket(name), stream, s.heads[stream])
			s.index[stream] = idx
			for _, e := range idx {
				s.live += e.size
			}
			bad = append(bad, runs...)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load buffer: %w", err)
	}

	s.epoch = epoch + 1
	nowNs := s.now().UnixNano()
	var moved []badRun
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketBlocks, bucketHeads, bucketMeta, bucketQuarantine, bucketGaps} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		mb := tx.Bucket(bucketMeta)
		if err := mb.Put([]byte(metaFormat), []byte{0, 0, 0, byte(formatVersion)}); err != nil {
			return err
		}
		if err := mb.Put([]byte(metaEpoch), encodeUint64Meta(s.epoch)); err != nil {
			return err
		}
		var err error
		moved, err = s.quarantineTx(tx, bad, nowNs)
		return err
	})
	if err != nil {
		return fmt.Errorf("commit epoch: %w", err)
	}
	s.applyQuarantine(moved)
	return nil
}

// check runs tx.Check and reports any finding as corruption.
func (s *Store) check() error {
	var errs []error
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		for cerr := range tx.Check() { // drain fully: Check's goroutine holds the tx
			n++
			if len(errs) < 5 {
				errs = append(errs, cerr)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: check: %w", errCorrupt, err)
	}
	if n > 0 {
		return fmt.Errorf("%w: tx.Check found %d problem(s): %w", errCorrupt, n, errors.Join(errs...))
	}
	return nil
}

// moveAside renames path to "<path>.corrupt-<unix>" (with a numeric suffix if taken) and
// fsyncs the directory so the rename survives a crash.
func moveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + strconv.FormatInt(now.Unix(), 10)
	dst := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = base + "." + strconv.Itoa(i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("rename corrupt buffer: %w", err)
	}
	if err := fsyncDir(filepath.Dir(path)); err != nil {
		return dst, err
	}
	return dst, nil
}

// fsyncDir makes directory entry changes (create, rename) in dir durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
