package opcua

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// Defaults for Options' zero values and fixed supervision parameters.
const (
	DefaultConnectTimeout = 10 * time.Second
	closeTimeout          = 2 * time.Second // bound on CloseSession when tearing a client down
	// silenceIntervals: with a pulsing server, no notification for this many publishing
	// intervals (at least 1 s each: servers update CurrentTime once a second) means the
	// subscription is dead, whatever the connection state says.
	silenceIntervals = 3
	keepAliveCount   = 3    // MaxKeepAliveCount of the subscription: keep-alives come often
	monitorBatch     = 1000 // monitored items per CreateMonitoredItems request
	defaultReadBatch = 1000 // nodes per Read request when the server states no limit
	pulseHandle      = math.MaxUint32
)

// Options tune a Source beyond what the config says. The zero value is the default,
// except Site and Gateway, which name the client certificate's application URI.
type Options struct {
	Site, Gateway string
	// ConnectTimeout bounds one connection attempt (endpoints, secure channel, session,
	// subscription). 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxBuffered caps the readings held between two Reads; beyond it the oldest are
	// dropped and counted. 0 means 16 per tag, at least 4096.
	MaxBuffered int
	// Now is the gateway clock (readings without a server timestamp, expiry warnings).
	// nil means time.Now.
	Now func() time.Time
	// Identity, when set, is used instead of loading or creating the certificate files.
	Identity *Identity
}

// tag is one configured tag, resolved at New (the node id is resolved per connection).
type tag struct {
	name     string // "<source>.<id>"
	unit     reading.Unit
	node     string
	server   bool          // timestamp: server
	sampling time.Duration // 0: the publishing interval
	deadband *ua.DataChangeFilter
	min, max *reading.Value
}

// Source is one OPC UA server connection and implements collector.Source. In subscribe
// mode the server pushes data changes into a bounded buffer that each Read drains; in
// poll mode each Read is one batched ReadRequest. Either way Read is where the connection
// is supervised: it starts a connection attempt when there is none and fails while the
// server is unreachable, so the Poller backs off and the agent declares the gap.
type Source struct {
	name     string
	log      *slog.Logger
	cfg      config.OPCUA
	policy   string // OPC UA policy name, "None" …
	mode     ua.MessageSecurityMode
	tags     []tag
	interval time.Duration // publishing interval
	connTO   time.Duration
	maxBuf   int
	now      func() time.Time
	id       *Identity
	password config.Secret
	userCert []byte
	userKey  *rsa.PrivateKey

	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// mu serialises Read and Close and guards the fields below.
	mu      sync.Mutex
	sess    *session
	attempt chan attemptResult // the connection attempt in flight, if any
	closed  bool
}

type attemptResult struct {
	sess *session
	err  error
}

// New validates src, loads (or creates, once) the client certificate and prepares the
// tags. It starts nothing and dials nothing: the first Read connects. log may be nil.
func New(src config.Source, log *slog.Logger, opts Options) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if src.Kind != "opcua" {
		errs = append(errs, fmt.Errorf("kind: %q is not opcua", src.Kind))
	}
	if src.OPCUA == nil {
		return nil, errors.Join(append(errs, errors.New("opcua: missing"))...)
	}
	o := *src.OPCUA
	s := &Source{
		name:   src.Name,
		log:    log.With("source", src.Name),
		cfg:    o,
		policy: config.OPCUAPolicyName(o.Security),
		connTO: opts.ConnectTimeout,
		maxBuf: opts.MaxBuffered,
		now:    opts.Now,
		id:     opts.Identity,
	}
	if s.policy == "" {
		errs = append(errs, fmt.Errorf("opcua.security: %q is not a known policy", o.Security))
	}
	switch o.Mode {
	case "sign":
		s.mode = ua.MessageSecurityModeSign
	case "signandencrypt":
		s.mode = ua.MessageSecurityModeSignAndEncrypt
	case "":
		s.mode = ua.MessageSecurityModeNone
	default:
		errs = append(errs, fmt.Errorf("opcua.mode: %q is not sign or signandencrypt", o.Mode))
	}
	if (s.policy == "None") != (s.mode == ua.MessageSecurityModeNone) {
		errs = append(errs, errors.New("opcua.mode: security none takes no mode, any other policy needs one"))
	}
	if o.Collect != "subscribe" && o.Collect != "poll" {
		errs = append(errs, fmt.Errorf("opcua.collect: %q is not subscribe or poll", o.Collect))
	}
	s.interval = o.PublishingInterval.D()
	if s.interval <= 0 {
		s.interval = src.Interval.D()
	}
	if s.interval <= 0 {
		s.interval = time.Second
	}
	if o.QueueSize <= 0 {
		s.cfg.QueueSize = config.DefaultOPCUAQueueSize
	}
	if len(src.Tags) == 0 {
		errs = append(errs, errors.New("tags: none"))
	}
	for i, ct := range src.Tags {
		t, err := resolveTag(src.Name, ct)
		if err != nil {
			errs = append(errs, fmt.Errorf("tags[%d]: %w", i, err))
		}
		s.tags = append(s.tags, t)
	}
	switch o.Auth {
	case "username":
		pw, err := o.Password()
		if err != nil {
			errs = append(errs, fmt.Errorf("opcua.password_file: %w", err))
		}
		s.password = pw
	case "certificate":
		uid, err := LoadIdentity(o.UserCertFile, o.UserKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("opcua.user_cert_file: %w", err))
		} else {
			s.userCert, s.userKey = uid.CertDER, uid.Key
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.connTO <= 0 {
		s.connTO = DefaultConnectTimeout
	}
	if s.maxBuf <= 0 {
		s.maxBuf = max(16*len(s.tags), 4096)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.policy == "None" {
		s.log.Warn("opcua security none: data and credentials cross the network unsigned and unencrypted", "endpoint", o.Endpoint)
	} else if s.id == nil {
		id, created, err := LoadOrCreateIdentity(o.CertFile, o.KeyFile, ApplicationURI(opts.Site, opts.Gateway), s.now())
		if err != nil {
			return nil, err
		}
		if created {
			s.log.Info("opcua client certificate created", "cert_file", o.CertFile, "thumbprint", id.Thumbprint(), "not_after", id.NotAfter)
		}
		s.id = id
	}
	if s.id != nil {
		if left := s.id.NotAfter.Sub(s.now()); left < CertWarnBefore {
			s.log.Warn("opcua client certificate expires soon: run `mrv-agent opcua renew-cert`",
				"cert_file", o.CertFile, "not_after", s.id.NotAfter, "days_left", int(left.Hours()/24))
		}
	}
	if o.AcceptAnyServerCert && s.policy != "None" {
		s.log.Warn("opcua accept_any_server_cert: the server certificate is not checked", "endpoint", o.Endpoint)
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func resolveTag(source string, ct config.Tag) (tag, error) {
	t := tag{name: source + "." + ct.ID, unit: reading.Unit(ct.Unit), node: ct.Node, server: ct.Timestamp == "server",
		sampling: ct.SamplingInterval.D()}
	var errs []error
	if ct.ID == "" {
		errs = append(errs, errors.New("id: empty"))
	}
	if !t.unit.Valid() {
		errs = append(errs, fmt.Errorf("unit: %q is not one of %s", ct.Unit, reading.UnitList()))
	}
	if ct.Node == "" {
		errs = append(errs, errors.New("node: empty"))
	} else if _, err := ua.ParseExpandedNodeID(ct.Node, nil); err != nil && !strings.HasPrefix(ct.Node, "nsu=") {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	if d := ct.Deadband; d != nil {
		f := &ua.DataChangeFilter{Trigger: ua.DataChangeTriggerStatusValue}
		switch {
		case d.Absolute != nil:
			f.DeadbandType, f.DeadbandValue = uint32(ua.DeadbandTypeAbsolute), d.Absolute.Float64()
		case d.Percent != nil:
			f.DeadbandType, f.DeadbandValue = uint32(ua.DeadbandTypePercent), d.Percent.Float64()
		}
		t.deadband = f
	}
	if ct.Min != nil {
		v := ct.Min.Value
		t.min = &v
	}
	if ct.Max != nil {
		v := ct.Max.Value
		t.max = &v
	}
	return t, errors.Join(errs...)
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Certificate describes the client certificate this source authenticates with, for the
// status page's expiry warning; ok is false when it uses none (security none).
func (s *Source) Certificate() (subject string, notAfter time.Time, ok bool) {
	if s.id == nil {
		return "", time.Time{}, false
	}
	return s.id.URI, s.id.NotAfter, true
}

// Read returns what the server reported since the last Read (subscribe mode) or the
// current value of every tag (poll mode). While there is no connection it starts an
// attempt (at most one at a time, bounded by the connect timeout, and carried over to
// the next Read if ctx expires first) and returns an error. A lost connection, a failed
// watchdog read of the server's CurrentTime or a subscription that went silent tears the
// client down (it is never reused) and returns an error with the readings that arrived
// before.
func (s *Source) Read(ctx context.Context) ([]reading.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("source closed")
	}
	if s.sess == nil {
		if s.attempt == nil {
			s.attempt = make(chan attemptResult, 1)
			s.wg.Add(1)
			go s.connectAttempt(s.attempt)
		}
		select {
		case r := <-s.attempt:
			s.attempt = nil
			if r.err != nil {
				return nil, r.err
			}
			s.sess = r.sess
			s.log.Info("opcua connected", "endpoint", s.cfg.Endpoint, "policy", s.policy, "mode", s.mode.String(),
				"items", r.sess.items, "bad_items", len(r.sess.pending))
		case <-ctx.Done():
			return nil, fmt.Errorf("connect %s: %w", s.cfg.Endpoint, ctx.Err())
		}
	}
	sess := s.sess
	var rs []reading.Reading
	var err error
	if s.cfg.Collect == "poll" {
		rs, err = s.poll(ctx, sess)
	} else {
		err = s.check(ctx, sess)
		rs = sess.drain()
	}
	if err != nil {
		s.sess = nil
		s.teardown(sess)
		return rs, err
	}
	return rs, nil
}

// check is the subscription's supervision (LIBRARIES.md §1): the client's own state, a
// publish error reported by the consumer, silence from a server that pulses, and a
// watchdog Read of Server_ServerStatus_CurrentTime.
func (s *Source) check(ctx context.Context, sess *session) error {
	if st := sess.c.State(); st != opcua.Connected {
		return fmt.Errorf("opcua %s: connection lost (state %s)", s.cfg.Endpoint, st)
	}
	if err := sess.failed(); err != nil {
		return fmt.Errorf("opcua %s: subscription: %w", s.cfg.Endpoint, err)
	}
	if limit := silenceIntervals * max(s.interval, time.Second); sess.silentFor(s.now()) > limit {
		return fmt.Errorf("opcua %s: no notification for more than %s from a server that sends one every second", s.cfg.Endpoint, limit)
	}
	res, err := sess.c.Read(ctx, &ua.ReadRequest{
		NodesToRead:        []*ua.ReadValueID{{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), AttributeID: ua.AttributeIDValue}},
		TimestampsToReturn: ua.TimestampsToReturnNeither,
	})
	switch {
	case err != nil:
		return fmt.Errorf("opcua %s: watchdog read of server time: %w", s.cfg.Endpoint, err)
	case len(res.Results) != 1:
		return fmt.Errorf("opcua %s: watchdog read of server time: %d results", s.cfg.Endpoint, len(res.Results))
	case res.Results[0].Status != ua.StatusOK:
		return fmt.Errorf("opcua %s: watchdog read of server time: %w", s.cfg.Endpoint, res.Results[0].Status)
	}
	return nil
}

// poll reads every resolved tag in batches of the server's MaxNodesPerRead.
func (s *Source) poll(ctx context.Context, sess *session) ([]reading.Reading, error) {
	if st := sess.c.State(); st != opcua.Connected {
		return nil, fmt.Errorf("opcua %s: connection lost (state %s)", s.cfg.Endpoint, st)
	}
	out := sess.takePending()
	gw := s.now()
	for off := 0; off < len(sess.nodes); off += sess.readBatch {
		end := min(off+sess.readBatch, len(sess.nodes))
		res, err := sess.c.Read(ctx, &ua.ReadRequest{NodesToRead: sess.nodes[off:end], TimestampsToReturn: ua.TimestampsToReturnBoth})
		if err != nil {
			return out, fmt.Errorf("opcua %s: read %d nodes: %w", s.cfg.Endpoint, end-off, err)
		}
		if len(res.Results) != end-off {
			return out, fmt.Errorf("opcua %s: read %d nodes: %d results", s.cfg.Endpoint, end-off, len(res.Results))
		}
		for i, dv := range res.Results {
			out = append(out, s.convert(&s.tags[sess.nodeTags[off+i]], dv, gw))
		}
	}
	return out, nil
}

// convert turns one DataValue into a reading: quality from the StatusCode, no value when
// it is Bad (servers send 0.0 with Bad: the 0 is never forwarded), the chosen timestamp.
func (s *Source) convert(t *tag, dv *ua.DataValue, gateway time.Time) reading.Reading {
	r := reading.Reading{Tag: t.name, Unit: t.unit}
	if dv == nil {
		r.Time, r.TimeSource = gateway.UnixNano(), reading.TimeGateway
		r.Quality = reading.Quality{Severity: reading.Bad, Flags: reading.FlagNoValue}
		return r
	}
	r.Time, r.TimeSource = pickTime(dv, t.server, gateway)
	r.Quality = Quality(dv.Status)
	if r.Quality.Severity == reading.Bad {
		return r
	}
	v, ok := Convert(dv.Value)
	if !ok {
		r.Quality.Severity = reading.Bad
		r.Quality.Flags |= reading.FlagNoValue
		return r
	}
	r.Value, r.HasValue, r.Raw = v, true, rawVariant(dv.Value)
	if (t.min != nil && v.Cmp(*t.min) < 0) || (t.max != nil && v.Cmp(*t.max) > 0) {
		r.Quality.Severity = reading.Bad
		r.Quality.Flags |= reading.FlagOutOfRange
	}
	return r
}

// pickTime returns the chosen timestamp (source or server), else the other one, else
// the gateway clock, and which it is.
func pickTime(dv *ua.DataValue, server bool, gateway time.Time) (int64, reading.TimeSource) {
	src, srv := dv.SourceTimestamp, dv.ServerTimestamp
	if dv.EncodingMask&ua.DataValueSourceTimestamp == 0 {
		src = time.Time{}
	}
	if dv.EncodingMask&ua.DataValueServerTimestamp == 0 {
		srv = time.Time{}
	}
	first, firstSrc, second, secondSrc := src, reading.TimeDevice, srv, reading.TimeServer
	if server {
		first, firstSrc, second, secondSrc = srv, reading.TimeServer, src, reading.TimeDevice
	}
	switch {
	case validTime(first):
		return first.UnixNano(), firstSrc
	case validTime(second):
		return second.UnixNano(), secondSrc
	}
	return gateway.UnixNano(), reading.TimeGateway
}

// validTime refuses a zero time and one outside what int64 Unix nanoseconds hold.
func validTime(t time.Time) bool {
	return !t.IsZero() && t.Year() > 1970 && t.Year() < 2262
}

// Close stops a connection attempt in flight, closes the client and waits for every
// goroutine of the source. Read fails afterwards.
func (s *Source) Close() error {
	s.cancel()
	s.mu.Lock()
	s.closed = true
	sess := s.sess
	s.sess = nil
	s.mu.Unlock()
	if sess != nil {
		s.teardown(sess)
	}
	s.wg.Wait()
	return nil
}

// teardown closes a session's client in the background (CloseSession is bounded by
// closeTimeout) and stops its consumer. A closed gopcua client is never reused.
func (s *Source) teardown(sess *session) {
	s.log.Debug("opcua client closing", "endpoint", s.cfg.Endpoint)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sess.close()
	}()
}
