package buffer

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

// mappedKiB is the resident size of this process's mappings of path (smaps Rss).
func mappedKiB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	require.NoError(t, err)
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			in = len(fields) >= 6 && fields[5] == path
		case in && len(fields) == 3 && fields[0] == "Rss:":
			kb, err := strconv.Atoi(fields[1])
			require.NoError(t, err)
			total += kb
		}
	}
	require.NoError(t, sc.Err())
	return total
}

// TestMappedPagesReleased writes and then reads back 16 MiB of blocks, the way an outage's
// backlog is stored and then drained: the pages of the buffer file mapped into the process
// stay around the releaseAfter budget instead of growing with the file.
func TestMappedPagesReleased(t *testing.T) {
	path := dbPath(t)
	s := open(t, path, Options{MaxBytes: 1 << 30})
	c := newChain("s", 0, 16<<10)
	for range 64 {
		var blocks []reading.Envelope
		for range 16 {
			blocks = append(blocks, c.block(1))
		}
		require.NoError(t, s.Commit(tick([]*chain{c}, blocks...)))
	}
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(16<<20))
	afterWrites := mappedKiB(t, path)

	var peak int
	for from := uint64(0); ; {
		got, err := s.Next("s", from, 8)
		require.NoError(t, err)
		if len(got) == 0 {
			break
		}
		from = got[len(got)-1].FirstSeq + uint64(got[len(got)-1].Records)
		peak = max(peak, mappedKiB(t, path))
	}
	t.Logf("file %d KiB; mapped after writes %d KiB, peak while reading %d KiB", fi.Size()>>10, afterWrites, peak)
	require.Less(t, afterWrites, 4<<10, "writes leave at most a few MiB mapped")
	require.Less(t, peak, 4<<10, "reading the whole file back leaves at most a few MiB mapped")
}

// TestMappedPagesReleasedManyStreams is the plant case: many streams, each reading its one
// small new block per tick. Each read maps the pages around it too (fault-around), so
// counting value bytes alone let several MiB stay mapped.
func TestMappedPagesReleasedManyStreams(t *testing.T) {
	path := dbPath(t)
	s := open(t, path, Options{MaxBytes: 1 << 30})
	var chains []*chain
	for i := range 65 {
		chains = append(chains, newChain(fmt.Sprintf("s%02d", i), 0, 9000))
	}
	peak := 0
	for tk := range uint64(60) {
		var blocks []reading.Envelope
		for _, c := range chains {
			blocks = append(blocks, c.block(1))
		}
		require.NoError(t, s.Commit(tick(chains, blocks...)))
		for _, c := range chains {
			got, err := s.Next(c.stream, tk, 4)
			require.NoError(t, err)
			require.Len(t, got, 1)
			s.MarkPublished(c.stream, tk)
		}
		peak = max(peak, mappedKiB(t, path))
	}
	t.Logf("peak mapped %d KiB", peak)
	require.Less(t, peak, 3<<10)
}
