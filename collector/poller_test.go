package collector_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/collector"
	"github.com/mrv-agent/mrv-agent/reading"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ collector.Source = (*fakeSource)(nil)

// fakeSource calls fn for each Read and records when Read was called.
type fakeSource struct {
	fn func(ctx context.Context, n int) ([]reading.Reading, error)

	mu    sync.Mutex
	calls []time.Time
}

func (f *fakeSource) Name() string { return "fake" }
func (f *fakeSource) Close() error { return nil }
func (f *fakeSource) Read(ctx context.Context) ([]reading.Reading, error) {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, time.Now())
	f.mu.Unlock()
	return f.fn(ctx, n)
}

func (f *fakeSource) Calls() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

func okReading() ([]reading.Reading, error) {
	return []reading.Reading{{Tag: "fake.x", Value: reading.FromInt64(1), HasValue: true, Unit: "kW"}}, nil
}

// logRecorder keeps every record logged through it.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}

// messages returns "LEVEL msg" for every record.
func (l *logRecorder) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, r := range l.recs {
		s = append(s, r.Level.String()+" "+r.Message)
	}
	return s
}

func (l *logRecorder) attr(msg, key string) (slog.Value, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		var v slog.Value
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == key {
				v, found = a.Value, true
				return false
			}
			return true
		})
		return v, found
	}
	return slog.Value{}, false
}

// start runs p in the bubble and returns a stop function that cancels it and checks that
// Run returned nil.
func start(t *testing.T, p *collector.Poller, out chan collector.Batch) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, out) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

func TestPollerAlignedSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now() // the bubble starts at 2000-01-01T00:00:00Z, a whole second
		time.Sleep(300 * time.Millisecond)
		src := &fakeSource{fn: func(context.Context, int) ([]reading.Reading, error) { return okReading() }}
		p := collector.NewPoller(src, time.Second, 500*time.Millisecond, nil)
		out := make(chan collector.Batch, 10)
		stop := start(t, p, out)
		// The first poll at once, then on the whole seconds.
		for i, want := range []time.Duration{300 * time.Millisecond, time.Second, 2 * time.Second} {
			b := <-out
			require.NoError(t, b.Err)
			require.Equal(t, "fake", b.Source)
			require.Len(t, b.Readings, 1)
			require.Equal(t, epoch.Add(want), b.Start, "poll %d", i)
		}
		stop()
		h := p.Health()
		require.True(t, h.Up)
		require.Equal(t, uint64(3), h.Polls)
		require.Zero(t, h.Failures)
		require.Zero(t, h.Missed)
		require.Equal(t, epoch.Add(2*time.Second), h.LastSuccess)
	})
}

func TestPollerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{fn: func(ctx context.Context, _ int) ([]reading.Reading, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		p := collector.NewPoller(src, time.Second, 400*time.Millisecond, nil)
		out := make(chan collector.Batch, 10)
		stop := start(t, p, out)
		b := <-out
		stop()
		require.ErrorIs(t, b.Err, context.DeadlineExceeded)
		require.Equal(t, 400*time.Millisecond, b.Duration)
		h := p.Health()
		require.False(t, h.Up)
		require.Equal(t, uint64(1), h.Failures)
		require.Equal(t, b.Start, h.DownSince)
		require.Contains(t, h.LastError, "deadline exceeded")
	})
}

func TestPollerBackoffAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		var healthy atomic.Bool
		var back time.Time // when the device returned; set before healthy, read after
		errDown := errors.New("connection refused")
		src := &fakeSource{fn: func(context.Context, int) ([]reading.Reading, error) {
			if healthy.Load() {
				return okReading()
			}
			return nil, errDown
		}}
		rec := &logRecorder{}
		p := collector.NewPoller(src, interval, 500*time.Millisecond, slog.New(rec))
		out := make(chan collector.Batch, 100)
		stop := start(t, p, out)

		time.Sleep(10*time.Second + 123*time.Millisecond)
		synctest.Wait()
		h := p.Health()
		require.False(t, h.Up)
		require.Equal(t, time.Unix(946684800, 0).UTC(), h.DownSince.UTC(), "the first poll, at once")
		require.Equal(t, h.Polls, h.Failures)

		back = time.Now()
		healthy.Store(true)
		var first collector.Batch
		for first = range out {
			if first.Err == nil {
				break
			}
		}
		require.WithinDuration(t, back, first.Start, interval, "recovered within one interval")
		// After recovery the schedule is aligned again.
		second := <-out
		require.NoError(t, second.Err)
		require.Equal(t, first.Start.Truncate(interval).Add(interval), second.Start)
		stop()

		calls := src.Calls()
		var prev time.Duration
		for i := 1; i < len(calls); i++ {
			gap := calls[i].Sub(calls[i-1])
			if calls[i-1].Before(back) {
				require.LessOrEqual(t, gap, interval, "retry %d: backoff is capped at the interval", i)
				require.GreaterOrEqual(t, gap, 5*time.Millisecond, "retry %d", i)
				if i < 4 {
					require.GreaterOrEqual(t, gap, prev/2, "retry %d grows", i)
				}
				prev = gap
			}
		}
		require.Greater(t, len(calls), 12, "retries are more frequent than the interval at first")

		require.Equal(t, []string{"WARN source down", "INFO source back"}, rec.messages())
		v, ok := rec.attr("source back", "outage_seconds")
		require.True(t, ok)
		require.InDelta(t, first.Start.Sub(time.Unix(946684800, 0)).Seconds(), v.Float64(), 1e-9)
		h = p.Health()
		require.True(t, h.Up)
		require.True(t, h.DownSince.IsZero())
		require.Equal(t, "connection refused", h.LastError)
	})
}

func TestPollerFirstPollUpIsLoggedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{fn: func(context.Context, int) ([]reading.Reading, error) { return okReading() }}
		rec := &logRecorder{}
		p := collector.NewPoller(src, time.Second, 0, slog.New(rec))
		out := make(chan collector.Batch, 10)
		stop := start(t, p, out)
		for range 5 {
			<-out
		}
		stop()
		require.Equal(t, []string{"INFO source up"}, rec.messages())
	})
}

func TestPollerMissedWhenPipelineLags(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{fn: func(context.Context, int) ([]reading.Reading, error) { return okReading() }}
		rec := &logRecorder{}
		p := collector.NewPoller(src, time.Second, 500*time.Millisecond, slog.New(rec))
		out := make(chan collector.Batch) // nobody reads yet
		stop := start(t, p, out)

		time.Sleep(5*time.Second + 500*time.Millisecond)
		synctest.Wait()
		h := p.Health()
		require.Equal(t, uint64(6), h.Polls)
		require.Equal(t, uint64(5), h.Missed, "polls 0-4 were dropped when the next was due; poll 5 still waits")

		b := <-out
		require.Equal(t, time.Unix(946684805, 0).UTC(), b.Start.UTC(), "a slow reader gets the batch it waited for")
		b = <-out
		require.Equal(t, time.Unix(946684806, 0).UTC(), b.Start.UTC())
		stop()
		require.Equal(t, uint64(5), p.Health().Missed)
		require.Equal(t, []string{"INFO source up", "WARN pipeline lagging, batch dropped", "INFO pipeline caught up"}, rec.messages())
	})
}

func TestPollerOverrunSkipsTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{fn: func(ctx context.Context, n int) ([]reading.Reading, error) {
			if n == 0 {
				time.Sleep(2500 * time.Millisecond) // the device answers slowly, within the timeout
			}
			return okReading()
		}}
		p := collector.NewPoller(src, time.Second, 3*time.Second, nil)
		out := make(chan collector.Batch, 10)
		stop := start(t, p, out)
		b1, b2 := <-out, <-out
		stop()
		require.Equal(t, 2500*time.Millisecond, b1.Duration)
		require.Equal(t, b1.Start.Add(3*time.Second), b2.Start, "next aligned tick after the overrun")
		require.Equal(t, uint64(2), p.Health().Missed, "ticks at +1 s and +2 s were skipped (the first poll is at once, at +0)")
	})
}

func TestPollerShutdownDuringRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{})
		src := &fakeSource{fn: func(ctx context.Context, _ int) ([]reading.Reading, error) {
			close(entered)
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		p := collector.NewPoller(src, time.Second, 500*time.Millisecond, nil)
		out := make(chan collector.Batch, 10)
		stop := start(t, p, out)
		<-entered
		stop()
		require.Empty(t, out, "an aborted poll is not a batch")
		require.Zero(t, p.Health().Failures, "shutdown is not a device failure")
	})
}

func TestPollerPartialFailureKeepsReadings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := reading.Reading{Tag: "fake.y", Quality: reading.Quality{Severity: reading.Bad, Flags: reading.FlagCommsLoss}}
		src := &fakeSource{fn: func(context.Context, int) ([]reading.Reading, error) {
			r, _ := okReading()
			return append(r, bad), errors.New("read holding registers 10+2: EOF")
		}}
		p := collector.NewPoller(src, time.Second, 0, nil)
		out := make(chan collector.Batch, 10)
		stop := start(t, p, out)
		b := <-out
		stop()
		require.Error(t, b.Err)
		require.Len(t, b.Readings, 2)
		require.False(t, b.Readings[1].HasValue)
	})
}
