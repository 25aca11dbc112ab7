package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/mrv-agent/mrv-agent/verify"
)

// progressEvery is how often a progress line is redrawn.
const progressEvery = 200 * time.Millisecond

// progress draws one self-overwriting line on a terminal while a long command reads a
// file: blocks and readings verified, the rate, and what remains by file offset. It is
// nil (and every method a no-op) when w is not a terminal, so pipes and logs stay clean.
type progress struct {
	w     io.Writer
	total int64 // file size; 0 when unknown
	read  atomic.Int64
	start time.Time
	last  time.Time
	drawn bool
}

// newProgress returns a progress for reading f, or nil when w is not a terminal.
func newProgress(w io.Writer, f *os.File) *progress {
	tf, ok := w.(*os.File)
	if !ok || !isTerminal(tf) {
		return nil
	}
	p := &progress{w: w, start: time.Now()}
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		p.total = fi.Size()
	}
	return p
}

// reader counts the bytes read through it.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return countingReader{r: r, n: &p.read}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// tick redraws the line at most every progressEvery.
func (p *progress) tick(summary func() verify.Summary) {
	if p == nil {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	p.draw(summary(), now)
}

func (p *progress) draw(s verify.Summary, now time.Time) {
	elapsed := now.Sub(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.Readings) / elapsed
	}
	line := fmt.Sprintf("verified %d blocks, %d readings  %.0f readings/s", s.Blocks, s.Readings, rate)
	if read := p.read.Load(); p.total > 0 && read > 0 {
		frac := min(float64(read)/float64(p.total), 1)
		line += fmt.Sprintf("  %3.0f%% of %s", 100*frac, sizeString(p.total))
		if frac > 0 && frac < 1 {
			left := time.Duration(elapsed * (1 - frac) / frac * float64(time.Second))
			line += fmt.Sprintf(", about %s left", left.Round(time.Second))
		}
	}
	if s.Failures > 0 || s.GapsUndeclared > 0 {
		line += fmt.Sprintf("  %d failures, %d undeclared gaps", s.Failures, s.GapsUndeclared)
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.drawn = true
}

// done clears the line, so the final summary starts on a clean one.
func (p *progress) done() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
}
