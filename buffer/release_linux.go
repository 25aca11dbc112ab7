package buffer

import "syscall"

// dontNeed is madvise(MADV_DONTNEED) on [addr, addr+n): for a shared file mapping it only
// unmaps the pages from this process; their contents stay in the page cache and the file.
func dontNeed(addr, n uintptr) error {
	if n == 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, n, syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
