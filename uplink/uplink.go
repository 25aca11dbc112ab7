package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Queue is what the Publisher needs from the block store. Implementations must be safe
// for use from the Publisher's goroutine while other goroutines append blocks.
type Queue interface {
	// Streams lists the streams that have stored blocks (any order). The Publisher only
	// reads the slice, so an implementation may return the same one every time.
	Streams() []string
	// Cursor is the first seq of stream not yet acknowledged by the broker (the persisted
	// publish cursor). It must reflect MarkPublished calls at once, even if the store
	// persists cursors later.
	Cursor(stream string) uint64
	// Next returns up to limit envelopes of stream whose LastSeq is >= from, in seq order,
	// without blocking; none when there are none. The Publisher keeps only what it returns
	// until the connection they were fetched for ends, and never modifies Bytes.
	Next(stream string, from uint64, limit int) ([]reading.Envelope, error)
	// MarkPublished records that every block of stream up to and including lastSeq was
	// acknowledged by the broker. Calls for one stream come in increasing lastSeq order.
	MarkPublished(stream string, lastSeq uint64)
}

// Config configures a Publisher. Zero values take the defaults stated per field.
type Config struct {
	URL      string      // mqtt://host:port or mqtts://host:port (also tcp://, ssl://, tls://)
	ClientID string      // required; two agents with one client id disconnect each other
	TLS      *tls.Config // used for mqtts/ssl/tls; nil means system roots. Ignored for mqtt/tcp
	Username string
	Password string
	// CAFile and CertFile are named in connect errors (TLSConfig builds TLS from them).
	CAFile, CertFile string

	Inflight   int           // max unacknowledged block publishes across all streams; 0 = 32
	DrainRate  int           // max blocks/s over all streams (token bucket, burst DrainRate: live traffic below it is not delayed); 0 = no limit
	AckTimeout time.Duration // a PUBACK not received within it tears the connection down; 0 = 30s

	Site, Gateway string // topic segments, [a-z0-9][a-z0-9-]*

	// Birth returns the signed birth message, fetched at every connect and published
	// retained with QoS 1 on StatusTopic. Nil means no birth message. An error is logged
	// and the connection proceeds without a birth message.
	Birth func() ([]byte, error)
	// Death is the pre-signed death message: the MQTT will (retained, QoS 1) and published
	// on a clean stop. Nil means neither.
	Death []byte
	// DeathFunc, if set, replaces Death: it is called at every connect, so the will can
	// carry what the agent knew when the connection started (its stream heads).
	DeathFunc func() ([]byte, error)
	// OnResend, if set, receives the payload of every message on the gateway's
	// cmd/resend topic (subscribed at every connect). It is called from paho's goroutine
	// and must not block: hand the payload over and answer with Resend.
	OnResend func(payload []byte)
	// OnPubAck, if set, is called with each block's time from publish to PUBACK (not for
	// republications), from the Publisher's goroutine; it must not block.
	OnPubAck func(latency time.Duration)

	Logger *slog.Logger // nil discards
}

// Stats is a snapshot of the Publisher's state for status pages.
type Stats struct {
	Connected  bool
	InFlight   int       // block publishes awaiting their PUBACK
	LastAck    time.Time // when a block was last acknowledged; zero if never
	Published  uint64    // blocks acknowledged and marked published since start
	Reconnects uint64    // successful connects after the first one
	LastError  string    // the last connection or publish error; empty if none yet
}

// Defaults and fixed timings.
const (
	DefaultInflight   = 32
	DefaultAckTimeout = 30 * time.Second

	keepAlive      = 10 * time.Second
	pingTimeout    = 5 * time.Second
	connectTimeout = 10 * time.Second
	writeTimeout   = 5 * time.Second // paho: Publish's hand-off to its writer, and each packet write
	shutdownWait   = 5 * time.Second // in-flight publishes and the death message, after ctx is done
	teardownWait   = 2 * time.Second // for paho to notice a socket we closed
	quiesce        = 250             // ms, Disconnect on a clean stop
	pollInterval   = time.Second     // fetch even without Wake
	backoffMin     = 200 * time.Millisecond
	backoffMax     = 30 * time.Second
	stableAfter    = 10 * time.Second // a connection that lasted this long resets the backoff
	fetchBatch     = 4                // envelopes per Queue.Next call: a drain holds few blocks besides those in flight
)

// Topic is the topic of a stream's blocks: "mrv/v1/{site}/{gateway}/{stream}/blocks".
func Topic(site, gateway, stream string) string {
	return "mrv/v1/" + site + "/" + gateway + "/" + stream + "/blocks"
}

// StatusTopic is the topic of the birth and death messages: "mrv/v1/{site}/{gateway}/status".
func StatusTopic(site, gateway string) string {
	return "mrv/v1/" + site + "/" + gateway + "/status"
}

// Publisher publishes a Queue's blocks over one supervised MQTT connection at a time.
// Run drives it; Wake and Stats may be called from any goroutine.
type Publisher struct {
	cfg    Config
	broker *url.URL
	q      Queue
	log    *slog.Logger
	wake   chan struct{}  // capacity 1: a pending wake-up
	resend chan resendJob // requested republications, served before new blocks
	ran    atomic.Bool

	// Owned by Run's goroutine.
	marked  map[string]uint64 // highest lastSeq passed to MarkPublished, per stream
	limiter *bucket
	gen     uint64 // connection generation; a session keeps the value it started with

	bg sync.WaitGroup // sessions' sender and watcher goroutines; Run waits for them

	// mu guards stats.
	mu    sync.Mutex
	stats Stats
}

// New checks cfg and returns a Publisher for q. It does not connect: Run does.
func New(cfg Config, q Queue) (*Publisher, error) {
	if q == nil {
		return nil, errors.New("uplink: nil queue")
	}
	u, err := parseBrokerURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" {
		return nil, errors.New("mqtt client id: empty")
	}
	if !reading.ValidSegment(cfg.Site) {
		return nil, fmt.Errorf("site %q: want [a-z0-9][a-z0-9-]*", cfg.Site)
	}
	if !reading.ValidSegment(cfg.Gateway) {
		return nil, fmt.Errorf("gateway %q: want [a-z0-9][a-z0-9-]*", cfg.Gateway)
	}
	switch {
	case cfg.Inflight < 0:
		return nil, fmt.Errorf("inflight %d: must be >= 0", cfg.Inflight)
	case cfg.Inflight == 0:
		cfg.Inflight = DefaultInflight
	case cfg.Inflight > 65535:
		return nil, fmt.Errorf("inflight %d: at most 65535 (MQTT packet ids)", cfg.Inflight)
	}
	if cfg.DrainRate < 0 {
		return nil, fmt.Errorf("drain rate %d: must be >= 0", cfg.DrainRate)
	}
	switch {
	case cfg.AckTimeout < 0:
		return nil, fmt.Errorf("ack timeout %s: must be >= 0", cfg.AckTimeout)
	case cfg.AckTimeout == 0:
		cfg.AckTimeout = DefaultAckTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Publisher{
		cfg:     cfg,
		broker:  u,
		q:       q,
		log:     log.With("broker", u.Redacted(), "client_id", cfg.ClientID),
		wake:    make(chan struct{}, 1),
		resend:  make(chan resendJob, maxResendJobs),
		marked:  make(map[string]uint64),
		limiter: newBucket(cfg.DrainRate),
	}, nil
}

// maxResendJobs bounds the republications waiting to be served.
const maxResendJobs = 16

// resendJob republishes the stored blocks of a stream that hold seqs next..last.
type resendJob struct {
	stream     string
	next, last uint64
}

// Resend asks for the stored blocks of stream holding seqs first..last to be published
// again, byte-identical, after any already requested and before new blocks. They do not
// move the publish cursor. It reports false when too many requests wait already.
func (p *Publisher) Resend(stream string, first, last uint64) bool {
	select {
	case p.resend <- resendJob{stream: stream, next: first, last: last}:
		p.Wake()
		return true
	default:
		return false
	}
}

// ResendTopic is where verifiers ask this gateway for resends.
func ResendTopic(site, gateway string) string { return reading.ResendTopic(site, gateway) }

// parseBrokerURL accepts mqtt, tcp (plain) and mqtts, ssl, tls (TLS) URLs with a host and
// a port, and nothing after the authority.
func parseBrokerURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("mqtt url: %w", err)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "mqtts", "ssl", "tls":
	default:
		return nil, fmt.Errorf("mqtt url %q: scheme must be mqtt, mqtts, tcp, ssl or tls", u.Redacted())
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("mqtt url %q: want scheme://host:port", u.Redacted())
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("mqtt url %q: unexpected path, query or fragment", u.Redacted())
	}
	return u, nil
}

func isTLS(u *url.URL) bool { return u.Scheme == "mqtts" || u.Scheme == "ssl" || u.Scheme == "tls" }

// Wake tells the Publisher that new blocks were committed. It never blocks.
func (p *Publisher) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the Publisher's state.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Publisher) updateStats(f func(*Stats)) {
	p.mu.Lock()
	f(&p.stats)
	p.mu.Unlock()
}

// Run connects and publishes until ctx is done, reconnecting with a jittered exponential
// backoff (200ms..30s) whenever the connection fails. When ctx is done it waits up to 5s
// for the PUBACKs of publishes in flight, publishes the death message, disconnects and
// returns nil. Run may be called once.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.ran.CompareAndSwap(false, true) {
		return errors.New("uplink: Run called twice")
	}
	defer p.bg.Wait()
	bo := newBackoff(backoffMin, backoffMax)
	var (
		everConnected bool
		downSince     time.Time // start of the current outage (zero while none)
		outageLogged  bool      // a Warn was logged for the current outage
	)
	for {
		if ctx.Err() != nil {
			return nil
		}
		s, err := p.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.updateStats(func(st *Stats) { st.LastError = err.Error() })
			if !outageLogged {
				p.log.Warn("mqtt connect failed", "err", err)
				outageLogged = true
			} else {
				p.log.Debug("mqtt connect failed", "err", err)
			}
			if downSince.IsZero() {
				downSince = time.Now()
			}
			if !sleepCtx(ctx, bo.next()) {
				return nil
			}
			continue
		}
		started := time.Now()
		if !everConnected {
			p.log.Info("mqtt connected")
			everConnected = true
		} else {
			p.updateStats(func(st *Stats) { st.Reconnects++ })
			p.log.Info("mqtt reconnected", "outage_seconds", started.Sub(downSince).Seconds())
		}
		downSince = time.Time{}

		err = s.run(ctx)
		if err == nil { // clean stop
			return nil
		}
		downSince = time.Now()
		p.updateStats(func(st *Stats) { st.LastError = err.Error() })
		p.log.Warn("mqtt connection lost", "err", err)
		outageLogged = true
		if downSince.Sub(started) >= stableAfter {
			bo.reset()
		}
		if !sleepCtx(ctx, bo.next()) {
			return nil
		}
	}
}

// sleepCtx waits d or until ctx is done; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
