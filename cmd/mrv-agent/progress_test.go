package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/verify"
)

func TestProgressOnlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "capture"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write(make([]byte, 1000))
	require.NoError(t, err)

	var buf bytes.Buffer
	require.Nil(t, newProgress(&buf, f), "not a terminal: no progress")
	var none *progress
	none.tick(func() verify.Summary { t.Fatal("no summary without a terminal"); return verify.Summary{} })
	none.done()
	require.Equal(t, "x", mustRead(t, none.reader(strings.NewReader("x"))))

	ptmx, tty, err := pty.Open()
	require.NoError(t, err)
	defer ptmx.Close()
	defer tty.Close()
	p := newProgress(tty, f)
	require.NotNil(t, p)
	require.Equal(t, int64(1000), p.total)
	_, err = io.CopyN(io.Discard, p.reader(bytes.NewReader(make([]byte, 250))), 250)
	require.NoError(t, err)
	p.start = time.Now().Add(-2 * time.Second)
	p.tick(func() verify.Summary { return verify.Summary{Blocks: 3, Readings: 40} })
	p.done()
	out := make([]byte, 512)
	n, err := ptmx.Read(out)
	require.NoError(t, err)
	line := string(out[:n])
	require.Contains(t, line, "verified 3 blocks, 40 readings")
	require.Contains(t, line, "20 readings/s")
	require.Contains(t, line, "25% of 1000 B, about 6s left")
}

func mustRead(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}
