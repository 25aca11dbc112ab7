package buffer

import (
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// releaseAfter is how much of the file the store may have mapped, by the estimate of
// released.touched, between two releases of the file's mapped pages.
const releaseAfter = 1 << 20

// faultAround is what one read of a value may map besides the value itself: on a page
// fault in a file mapping Linux maps the cached pages around it too (fault_around_bytes,
// 64 KiB by default), and bbolt's MADV_RANDOM does not turn that off. Counting value bytes
// alone, a store reading many small blocks of many streams kept several MiB mapped.
const faultAround = 64 << 10

// released estimates how much of the file was mapped since the pages were last released.
type released struct{ n atomic.Int64 }

// touched adds the reading or writing of values values of n bytes in all and reports
// whether the mapped pages are due for release.
func (r *released) touched(values, n int) bool {
	if r.n.Add(int64(n+values*faultAround)) < releaseAfter {
		return false
	}
	r.n.Store(0)
	return true
}

// releaseMapped drops the agent's mappings of the buffer file's pages (the page cache keeps
// them; a later read maps them again). bbolt reads through a shared read-only mmap, so
// every block read for publishing stays mapped in the process and counts in its RSS, which
// would then grow with the backlog an outage leaves, and stay there. Released every
// releaseAfter bytes read or written, the mapped part stays around the pages in use: the
// meta pages, the branch pages and the leaves being appended to.
//
// It runs inside a read transaction, which holds bbolt's mmap lock: the mapping cannot be
// replaced (remapped to a larger size) while its address is used. Only whole pages of the
// file are released, the part of the mapping the file covers.
func (s *Store) releaseMapped() {
	_ = s.db.View(func(tx *bolt.Tx) error {
		info := tx.DB().Info()
		if err := dontNeed(info.Data, uintptr(tx.Size())); err != nil {
			s.log.Debug("release mapped buffer pages", "err", err)
		}
		return nil
	})
}
