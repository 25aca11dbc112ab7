package agent

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/status"
)

// observer is the agent's side of the status server and of the systemd watchdog: counters
// the pipeline updates at each commit, a copy of the pipeline's stream heads for other
// goroutines, and the server itself. The pipeline goroutine writes; any goroutine reads.
type observer struct {
	srv        *status.Server // nil when disabled or when its address could not be bound
	stallAfter time.Duration
	base       time.Time // monotonic origin of the *Mono fields

	started    atomic.Int64  // Unix ns when Run started; 0 before
	lastCommit atomic.Int64  // Unix ns of the last successful commit (wall clock)
	commitMono atomic.Int64  // the same, as ns since base (monotonic); startMono before the first
	failedAt   atomic.Uint64 // Agent.commitErr at the last successful commit
	open       atomic.Bool   // the buffer is open and the pipeline running

	firstCommit chan struct{} // closed at the first successful commit
	firstOnce   sync.Once

	// Read-only maps (built in New) of counters.
	quality map[string]*[4]atomic.Uint64 // per source: good, uncertain, bad, other
	sealed  map[string]*atomic.Uint64    // blocks committed per stream

	heads   atomic.Pointer[[]streamHead] // the pipeline's streams after the last commit
	latency *status.Histogram            // publish -> PUBACK

	// afterCommit, if set (tests), runs on the pipeline goroutine after every commit.
	afterCommit func()
}

// streamHead is the part of a stream's state the status page shows.
type streamHead struct {
	name    string
	logID   [16]byte
	nextSeq uint64
}

// qualityNames index observer.quality.
var qualityNames = [4]string{"good", "uncertain", "bad", "other"}

// defaultStallAfter is how long the pipeline may go without a commit before /healthz
// fails and the watchdog is no longer petted: three seal periods plus 10 s.
func defaultStallAfter(cfg *config.Config) time.Duration {
	return 3*cfg.Blocks.MaxAge.D() + 10*time.Second
}

func newObserver(cfg *config.Config, opts Options) *observer {
	o := &observer{
		stallAfter:  opts.StallAfter,
		base:        time.Now(),
		firstCommit: make(chan struct{}),
		quality:     make(map[string]*[4]atomic.Uint64),
		sealed:      map[string]*atomic.Uint64{AgentStream: new(atomic.Uint64)},
		latency:     status.NewHistogram(status.LatencyBounds),
	}
	if o.stallAfter <= 0 {
		o.stallAfter = defaultStallAfter(cfg)
	}
	for _, sc := range cfg.Sources {
		o.quality[sc.Name] = new([4]atomic.Uint64)
		o.sealed[sc.Name] = new(atomic.Uint64)
	}
	return o
}

func (o *observer) mono() int64 { return int64(time.Since(o.base)) }

// idle is the time since the last commit, or since Run started before the first.
func (o *observer) idle() time.Duration {
	return time.Duration(o.mono() - o.commitMono.Load())
}

// countReading counts one committed reading of a source by quality.
func (o *observer) countReading(source string, r reading.Record) {
	q, ok := o.quality[source]
	b, isReading := r.Body.(*reading.ReadingBody)
	if !ok || !isReading {
		return
	}
	q[min(int(b.Quality), len(q)-1)].Add(1)
}

// startStatus prepares the status server at the end of New: a configuration the server
// refuses (a non-loopback address without authentication) is an error; an address that
// cannot be bound is logged and the agent runs without it, since metering matters more
// than its status page (and the missing page shows).
func (a *Agent) startStatus(opts Options) error {
	a.publishHeads()
	if opts.NoStatus {
		return nil
	}
	listen := a.cfg.Status.Listen
	if opts.StatusListen != "" {
		listen = opts.StatusListen
	}
	pw, err := a.cfg.Status.Password()
	if err != nil {
		return fmt.Errorf("status.password_file: %w", err)
	}
	srv, err := status.New(status.Config{
		Listen:        listen,
		Username:      a.cfg.Status.Username,
		Password:      pw,
		StallAfter:    a.obs.stallAfter,
		BacklogBudget: opts.BacklogBudget,
		Logger:        a.log.With("component", "status"),
	}, a)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		a.log.Error("status server disabled", "listen", listen, "err", err)
		return nil
	}
	a.obs.srv = srv
	return nil
}

// StatusAddr is the status server's bound address ("" when it is disabled).
func (a *Agent) StatusAddr() string {
	if a.obs.srv == nil {
		return ""
	}
	return a.obs.srv.Addr().String()
}

// StatusURL is the status page's URL ("" when the server is disabled).
func (a *Agent) StatusURL() string {
	addr := a.StatusAddr()
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// observe starts, in Run's group, the status server and the systemd notifier. Both stop
// when the pipeline has finished (done), so that the page shows the final flush.
func (a *Agent) observe(g *errgroup.Group, ctx, done context.Context) {
	o := a.obs
	o.started.Store(a.now().UnixNano())
	o.commitMono.Store(o.mono())
	o.open.Store(true)
	g.Go(func() error {
		defer o.open.Store(false)
		if o.srv == nil {
			<-done.Done()
			return nil
		}
		if err := o.srv.Run(done); err != nil {
			// The pipeline goes on without its status page.
			a.log.Error("status server failed", "err", err)
		}
		return nil
	})
	g.Go(func() error {
		a.runNotify(ctx, done)
		return nil
	})
}

// committed runs on the pipeline goroutine after each successful commit.
func (a *Agent) committed(now time.Time, envs []reading.Envelope) {
	o := a.obs
	for _, e := range envs {
		if c, ok := o.sealed[e.Stream]; ok {
			c.Add(1)
		}
	}
	o.lastCommit.Store(now.UnixNano())
	o.commitMono.Store(o.mono())
	o.failedAt.Store(a.commitErr.Load())
	a.publishHeads()
	o.firstOnce.Do(func() { close(o.firstCommit) })
	if o.afterCommit != nil {
		o.afterCommit()
	}
}

// publishHeads copies the streams' heads for other goroutines; the pipeline goroutine (or
// New, before it starts) calls it.
func (a *Agent) publishHeads() {
	heads := make([]streamHead, 0, len(a.order))
	for _, name := range a.order {
		st := a.streams[name]
		heads = append(heads, streamHead{name: name, logID: st.LogID, nextSeq: st.NextSeq})
	}
	a.obs.heads.Store(&heads)
}

// Snapshot returns the agent's state for the status server; safe for concurrent use.
func (a *Agent) Snapshot() status.Snapshot {
	o := a.obs
	now := a.now()
	us := a.pub.Stats()
	bs := a.store.Stats()
	snap := status.Snapshot{
		Time:    now,
		Version: a.ver,
		Site:    a.cfg.Gateway.Site,
		Gateway: a.cfg.Gateway.ID,
		KeyID:   seal.KidString(a.keyNow.Load().Kid),
		Clock:   clockString(ClockState()),
		Pipeline: status.Pipeline{
			Started:       unixTime(o.started.Load()),
			LastCommit:    unixTime(o.lastCommit.Load()),
			IdleSeconds:   o.idle().Seconds(),
			Readings:      a.readings.Load(),
			Blocks:        a.sealed.Load(),
			FailedCommits: a.commitErr.Load(),
		},
		Uplink: status.Uplink{Connected: us.Connected, InFlight: us.InFlight, LastAck: us.LastAck,
			Published: us.Published, Reconnects: us.Reconnects, LastError: us.LastError},
		Buffer: status.Buffer{Open: o.open.Load(), Failing: a.commitErr.Load() > o.failedAt.Load(),
			LiveBytes: bs.LiveBytes, FileBytes: bs.FileBytes, Quarantined: bs.Quarantined, Dropped: bs.Dropped},
		// Typed slots filled once the emissions engine and the OPC UA client certificates
		// are wired into the agent.
		Emissions:      a.liveEmissions(),
		Certificates:   a.certificates(),
		PublishLatency: o.latency.Snapshot(),
	}
	for _, p := range a.pollers {
		h := p.Health()
		src := status.Source{Name: h.Source, State: status.StateUnknown, LastPoll: h.LastPoll, LastSuccess: h.LastSuccess,
			DownSince: h.DownSince, LastError: h.LastError, Polls: h.Polls, Failures: h.Failures, Missed: h.Missed,
			Quality: map[string]uint64{}}
		switch {
		case h.Up:
			src.State = status.StateUp
		case h.Failures > 0:
			src.State = status.StateDown
		}
		if q, ok := o.quality[h.Source]; ok {
			for i, name := range qualityNames {
				if n := q[i].Load(); n > 0 || i < 3 {
					src.Quality[name] = n
				}
			}
		}
		snap.Sources = append(snap.Sources, src)
	}
	if heads := o.heads.Load(); heads != nil {
		for _, h := range *heads {
			ss := bs.Streams[h.name]
			st := status.Stream{Name: h.name, LogID: fmt.Sprintf("%x", h.logID), NextSeq: h.nextSeq,
				Stored: ss.Blocks, Unpublished: ss.Unpublished, OldestUnpublished: ss.OldestUnpublished}
			if c, ok := o.sealed[h.name]; ok {
				st.Sealed = c.Load()
			}
			snap.Streams = append(snap.Streams, st)
		}
	}
	return snap
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func clockString(state uint8) string {
	switch state {
	case reading.ClockSynchronised:
		return status.ClockSynchronised
	case reading.ClockUnsynced:
		return status.ClockUnsynchronised
	}
	return status.ClockUnknown
}

// certificates lists the client certificates the sources authenticate with (OPC UA), for
// the expiry warning of the status page and mrv_cert_expiry_seconds.
func (a *Agent) certificates() []status.Certificate {
	out := []status.Certificate{}
	for _, s := range a.sources {
		c, ok := s.(interface {
			Certificate() (subject string, notAfter time.Time, ok bool)
		})
		if !ok {
			continue
		}
		if subject, notAfter, ok := c.Certificate(); ok {
			out = append(out, status.Certificate{Name: "opcua " + s.Name(), Subject: subject, NotAfter: notAfter})
		}
	}
	return out
}
