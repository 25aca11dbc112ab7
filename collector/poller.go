package collector

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff bounds. The first retry after a failure comes after about interval/backoffDivisor
// (never less than minBackoff), and each further failure doubles it, up to the interval.
const (
	backoffDivisor = 16
	minBackoff     = 10 * time.Millisecond
)

// Health is a snapshot of a source's poll history, for the status server.
type Health struct {
	Source       string
	Up           bool // false until the first successful poll, and after any failed one
	LastPoll     time.Time
	LastSuccess  time.Time
	LastError    string // of the last failed poll; kept after recovery
	LastDuration time.Duration
	Polls        uint64    // polls attempted (retries during an outage included)
	Failures     uint64    // polls that returned an error
	Missed       uint64    // batches dropped because out was full, plus ticks skipped by overrunning polls
	DownSince    time.Time // start of the first failed poll of the current outage; zero when up
}

type state uint8

const (
	stateUnknown state = iota
	stateUp
	stateDown
)

// Poller runs one Source: it polls on a schedule aligned to the interval (a 10 s interval
// polls at :00, :10, :20 …), each poll under its own timeout, and sends every outcome as a
// Batch. After a failed poll it retries with jittered exponential backoff capped at the
// interval, so a device that comes back is read again within one interval (plus the timeout);
// once a poll succeeds it returns to the aligned schedule.
type Poller struct {
	src      Source
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	// mu guards the fields below.
	mu     sync.Mutex
	health Health
	state  state
	lagged bool // the last batch was dropped (logged once per episode)
}

// NewPoller returns a Poller for src. An interval ≤ 0 means 1 s; a timeout ≤ 0 means the
// interval. A nil log discards. The Poller never closes src.
func NewPoller(src Source, interval, timeout time.Duration, log *slog.Logger) *Poller {
	if interval <= 0 {
		interval = time.Second
	}
	if timeout <= 0 {
		timeout = interval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Poller{
		src:      src,
		interval: interval,
		timeout:  timeout,
		log:      log.With("source", src.Name()),
		health:   Health{Source: src.Name()},
	}
}

// Health returns a snapshot of the source's health. It is safe to call from any goroutine.
func (p *Poller) Health() Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.health
}

// Run polls until ctx is done and then returns nil. Each Batch is offered to out until the
// next poll is due; if out is still full then, the batch is dropped and counted in
// Health.Missed (the pipeline lags). Run does not close out: several pollers may share it.
func (p *Poller) Run(ctx context.Context, out chan<- Batch) error {
	// The first poll happens at once, so that a start delivers readings without waiting up
	// to an interval for the first aligned tick; the schedule is aligned from the second on.
	next := time.Now()
	first := true       // next is the first poll, unaligned
	onSchedule := false // next is an aligned tick, not the first poll or a backoff retry
	failures := 0       // consecutive failed polls
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		scheduled := next
		b := p.poll(ctx)
		if b.Err != nil && ctx.Err() != nil {
			return nil // aborted by shutdown: neither data nor a device failure
		}
		now := time.Now()
		if b.Err != nil {
			failures++
			next = now.Add(p.backoff(failures))
			onSchedule = false
		} else {
			failures = 0
			next = p.align(now)
			due := scheduled
			if first { // the ticks due after it are the aligned ones from align(scheduled) on
				due = p.align(scheduled).Add(-p.interval)
			}
			if onSchedule || first {
				if skipped := next.Sub(due)/p.interval - 1; skipped > 0 {
					p.addMissed(uint64(skipped))
				}
			}
			onSchedule = true
		}
		first = false
		p.record(b)
		if !p.send(ctx, out, b, next) {
			if ctx.Err() != nil {
				return nil
			}
			p.dropped()
		} else {
			p.delivered()
		}
		timer.Reset(time.Until(next))
	}
}

// align returns the first multiple of the interval strictly after t.
func (p *Poller) align(t time.Time) time.Time {
	return t.Truncate(p.interval).Add(p.interval)
}

// backoff returns the delay before retry number n (n ≥ 1): base·2^(n-1), capped at the
// interval, with "equal jitter" (uniform in [d/2, d]) so that sources behind one gateway
// do not retry in lock-step.
func (p *Poller) backoff(n int) time.Duration {
	base := max(p.interval/backoffDivisor, minBackoff)
	d := p.interval
	if n-1 < 30 {
		d = min(base<<(n-1), p.interval)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func (p *Poller) poll(ctx context.Context) Batch {
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	rs, err := p.src.Read(pctx)
	cancel()
	return Batch{Source: p.src.Name(), Readings: rs, Err: err, Start: start, Duration: time.Since(start)}
}

// record updates the health with one poll's outcome and logs state changes (only those).
func (p *Poller) record(b Batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := &p.health
	h.Polls++
	h.LastPoll = b.Start
	h.LastDuration = b.Duration
	if b.Err != nil {
		h.Failures++
		h.LastError = b.Err.Error()
		h.Up = false
		if p.state != stateDown {
			p.state = stateDown
			h.DownSince = b.Start
			p.log.Warn("source down", "err", b.Err)
		}
		return
	}
	h.LastSuccess = b.Start
	h.Up = true
	switch p.state {
	case stateDown:
		p.log.Info("source back", "outage_seconds", b.Start.Sub(h.DownSince).Seconds())
	case stateUnknown:
		p.log.Info("source up")
	}
	p.state = stateUp
	h.DownSince = time.Time{}
}

// send offers b to out until the next poll is due; it reports whether b was delivered.
func (p *Poller) send(ctx context.Context, out chan<- Batch, b Batch, due time.Time) bool {
	select {
	case out <- b:
		return true
	default:
	}
	t := time.NewTimer(time.Until(due))
	defer t.Stop()
	select {
	case out <- b:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (p *Poller) addMissed(n uint64) {
	p.mu.Lock()
	p.health.Missed += n
	p.mu.Unlock()
}

func (p *Poller) dropped() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.health.Missed++
	if !p.lagged {
		p.lagged = true
		p.log.Warn("pipeline lagging, batch dropped", "missed", p.health.Missed)
	}
}

func (p *Poller) delivered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lagged {
		p.lagged = false
		p.log.Info("pipeline caught up", "missed", p.health.Missed)
	}
}
