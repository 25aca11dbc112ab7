package buffer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Start-up compaction thresholds (variables for tests): a file larger than
// compactMinBytes whose pages in use are less than half of it is compacted.
var (
	compactMinBytes int64 = 16 << 20
	compactRatio    int64 = 2
)

// compactTxMax bounds the size of each copy transaction of bolt.Compact.
const compactTxMax = 64 << 20

// compactSuffix names the temporary file a compaction writes before the rename.
const compactSuffix = ".compact"

// maybeCompact rewrites the buffer file without its free pages when it is much larger than
// what it holds (bbolt never shrinks a file by itself): bolt.Compact copies every bucket,
// key and value into "<path>.compact", which is synced, renamed over path, and the
// directory synced, so a crash at any point leaves either the old or the new complete file
// (a leftover ".compact" is removed at the next start). It runs before the store loads
// the file and holds the file's lock throughout. A file it cannot read (corrupt, or in use)
// is left alone for openAndLoad to judge; a file in use is reported (wrapping ErrInUse).
// It reports whether it compacted.
func maybeCompact(path string, timeout time.Duration, log *slog.Logger) (bool, error) {
	tmp := path + compactSuffix
	if err := os.Remove(tmp); err == nil {
		log.Warn("removed an unfinished compaction", "path", tmp)
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("remove %s: %w", tmp, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= compactMinBytes {
		return false, nil // no file yet, or small: nothing to do
	}
	src, err := openBolt(path, timeout)
	if errors.Is(err, ErrInUse) {
		return false, err
	}
	if err != nil {
		return false, nil // openAndLoad moves the file aside (corrupt) or reports the error
	}
	size, inUse, err := usage(src)
	if err != nil || size <= compactMinBytes || size <= compactRatio*inUse {
		closeQuietly(src)
		return false, nil // unreadable: openAndLoad's check judges the file
	}
	started := time.Now()
	if err := compactInto(src, tmp); err != nil {
		closeQuietly(src)
		_ = os.Remove(tmp)
		return false, err
	}
	// The rename happens while src still holds the lock on the old file, so no other
	// process opens it in between; the new file is complete and synced.
	if err := os.Rename(tmp, path); err != nil {
		closeQuietly(src)
		_ = os.Remove(tmp)
		return false, fmt.Errorf("rename compacted buffer: %w", err)
	}
	closeQuietly(src)
	if err := fsyncDir(filepath.Dir(path)); err != nil {
		return true, err
	}
	after := int64(0)
	if fi, err := os.Stat(path); err == nil {
		after = fi.Size()
	}
	log.Info("buffer compacted", "path", path, "bytes_before", size, "bytes_after", after,
		"seconds", time.Since(started).Seconds())
	return true, nil
}

// usage returns the file size and the bytes of the pages in use (not free or pending).
func usage(db *bolt.DB) (size, inUse int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bbolt panicked: %v", errCorrupt, r)
		}
	}()
	err = db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	st := db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize)
	return size, size - free, err
}

// compactInto copies src into a new bbolt file at dst and syncs it.
func compactInto(src *bolt.DB, dst string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("compact buffer: %w: bbolt panicked: %v", errCorrupt, r)
		}
	}()
	db, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("compact buffer: %w", err)
	}
	if err := bolt.Compact(db, src, compactTxMax); err != nil {
		closeQuietly(db)
		return fmt.Errorf("compact buffer: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("compact buffer: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("compact buffer: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("compact buffer: fsync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("compact buffer: %w", err)
	}
	return nil
}
