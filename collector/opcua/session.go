package opcua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/mrv-agent/mrv-agent/reading"
)

// session is one gopcua client with its subscription (subscribe mode) or its read plan
// (poll mode). It is built whole by connect and thrown away whole by close.
type session struct {
	c      *opcua.Client
	cancel context.CancelFunc // stops the consumer
	done   chan struct{}      // closed when the consumer has returned (nil in poll mode)
	items  int                // monitored items (or polled nodes) that the server accepted

	// poll mode
	nodes     []*ua.ReadValueID
	nodeTags  []int // nodes[i] is tags[nodeTags[i]]
	readBatch int

	src *Source

	// mu guards the fields below, shared by the consumer and Read.
	mu         sync.Mutex
	buf        []reading.Reading
	pending    []reading.Reading // Bad readings of tags the server refused, reported once
	dropped    uint64
	lastNotify time.Time
	pulses     int // notifications of CurrentTime seen: ≥ 2 means the server pulses
	err        error
}

// connectAttempt runs one connection attempt under the source's lifetime and the connect
// timeout and delivers its outcome on ch (buffered).
func (s *Source) connectAttempt(ch chan<- attemptResult) {
	defer s.wg.Done()
	ctx, cancel := context.WithTimeout(s.base, s.connTO)
	defer cancel()
	sess, err := s.connect(ctx)
	if err == nil && s.base.Err() != nil {
		sess.close() // Close came first: nobody will take it
		sess, err = nil, s.base.Err()
	}
	ch <- attemptResult{sess, err}
}

// clientOptions returns the gopcua options for endpoint ep.
func (s *Source) clientOptions(ep *ua.EndpointDescription) []opcua.Option {
	opts := []opcua.Option{
		opcua.AutoReconnect(false), // LIBRARIES.md §1: we supervise and rebuild ourselves
		opcua.ApplicationName("mrv-agent"),
		opcua.SessionName("mrv-agent " + s.name),
		opcua.SessionTimeout(max(10*s.interval, time.Minute)),
		opcua.RequestTimeout(s.connTO),
		opcua.DialTimeout(s.connTO),
	}
	if s.id != nil {
		opts = append(opts, opcua.Certificate(s.id.CertDER), opcua.PrivateKey(s.id.Key))
		if s.id.URI != "" {
			opts = append(opts, opcua.ApplicationURI(s.id.URI))
		}
	}
	var tokenType ua.UserTokenType
	switch s.cfg.Auth {
	case "username":
		tokenType = ua.UserTokenTypeUserName
		opts = append(opts, opcua.AuthUsername(s.cfg.Username, s.password.Reveal()))
	case "certificate":
		tokenType = ua.UserTokenTypeCertificate
		opts = append(opts, opcua.AuthCertificate(s.userCert), opcua.AuthPrivateKey(s.userKey))
	default:
		tokenType = ua.UserTokenTypeAnonymous
		opts = append(opts, opcua.AuthAnonymous())
	}
	// After the Auth option: it sets the token's policy id from the endpoint.
	return append(opts, opcua.SecurityFromEndpoint(ep, tokenType))
}

// selectEndpoint asks the server for its endpoints and picks the one with the configured
// policy and mode, checking its certificate against the trust directory.
func (s *Source) selectEndpoint(ctx context.Context) (*ua.EndpointDescription, error) {
	eps, err := opcua.GetEndpoints(ctx, s.cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("opcua %s: get endpoints: %w", s.cfg.Endpoint, err)
	}
	ep, err := opcua.SelectEndpoint(slices.Clone(eps), s.policy, s.mode)
	if err != nil {
		var offered []string
		for _, e := range eps {
			offered = append(offered, policyName(e.SecurityPolicyURI)+"/"+e.SecurityMode.String())
		}
		return nil, fmt.Errorf("opcua %s: no endpoint with policy %s and mode %s (offered: %v)", s.cfg.Endpoint, s.policy, s.mode, offered)
	}
	if s.policy != "None" && !s.cfg.AcceptAnyServerCert {
		if err := CheckTrust(s.cfg.Endpoint, s.cfg.TrustDir, ep.ServerCertificate); err != nil {
			return nil, err
		}
	}
	return ep, nil
}

func policyName(uri string) string {
	if i := len("http://opcfoundation.org/UA/SecurityPolicy#"); len(uri) > i {
		return uri[i:]
	}
	return uri
}

// connect builds a new client, connects it, resolves the node ids (namespace URIs are
// looked up again: indexes can change after a server restart) and creates the
// subscription and its monitored items (subscribe mode) or the read plan (poll mode).
// Items the server refuses are not kept: each yields one Bad reading.
func (s *Source) connect(ctx context.Context) (_ *session, err error) {
	ep, err := s.selectEndpoint(ctx)
	if err != nil {
		return nil, err
	}
	c, err := opcua.NewClient(s.cfg.Endpoint, s.clientOptions(ep)...)
	if err != nil {
		return nil, fmt.Errorf("opcua %s: client: %w", s.cfg.Endpoint, err)
	}
	if err := c.Connect(ctx); err != nil {
		closeClient(c)
		return nil, fmt.Errorf("opcua %s: connect: %w", s.cfg.Endpoint, err)
	}
	sess := &session{c: c, src: s, cancel: func() {}, lastNotify: s.now()}
	defer func() {
		if err != nil {
			sess.close()
		}
	}()
	gw := s.now()
	ids := make([]*ua.NodeID, len(s.tags))
	ns := c.Namespaces()
	for i := range s.tags {
		t := &s.tags[i]
		x, perr := ua.ParseExpandedNodeID(t.node, ns)
		if perr != nil {
			s.log.Warn("opcua node id does not resolve", "tag", t.name, "node", t.node, "err", perr)
			sess.pending = append(sess.pending, badReading(t, ua.StatusBadNodeIDUnknown, gw))
			continue
		}
		ids[i] = x.NodeID
	}
	if s.cfg.Collect == "poll" {
		sess.readBatch = s.readBatch(ctx, c)
		for i, nid := range ids {
			if nid != nil {
				sess.nodes = append(sess.nodes, &ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDValue})
				sess.nodeTags = append(sess.nodeTags, i)
			}
		}
		sess.items = len(sess.nodes)
		return sess, nil
	}
	return sess, s.subscribe(ctx, sess, ids)
}

// readBatch returns the server's MaxNodesPerRead, or defaultReadBatch.
func (s *Source) readBatch(ctx context.Context, c *opcua.Client) int {
	res, err := c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{
		NodeID: ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead), AttributeID: ua.AttributeIDValue}}})
	if err == nil && len(res.Results) == 1 && res.Results[0].Status == ua.StatusOK && res.Results[0].Value != nil {
		if n, ok := res.Results[0].Value.Value().(uint32); ok && n > 0 {
			return int(min(n, 10000))
		}
	}
	return defaultReadBatch
}

func (s *Source) subscribe(ctx context.Context, sess *session, ids []*ua.NodeID) error {
	notif := make(chan *opcua.PublishNotificationData, 64)
	lifetime := uint32(max(30*keepAliveCount, int(time.Minute/s.interval)+1))
	sub, err := sess.c.Subscribe(ctx, &opcua.SubscriptionParameters{
		Interval:          s.interval,
		MaxKeepAliveCount: keepAliveCount,
		LifetimeCount:     lifetime,
	}, notif)
	if err != nil {
		return fmt.Errorf("opcua %s: create subscription: %w", s.cfg.Endpoint, err)
	}
	pctx, cancel := context.WithCancel(s.base)
	sess.cancel, sess.done = cancel, make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(sess.done)
		sess.consume(pctx, notif)
	}()

	var reqs []*ua.MonitoredItemCreateRequest
	var handles []uint32
	for i, nid := range ids {
		if nid == nil {
			continue
		}
		t := &s.tags[i]
		p := &ua.MonitoringParameters{ClientHandle: uint32(i), DiscardOldest: true, QueueSize: uint32(s.cfg.QueueSize),
			SamplingInterval: -1} // -1: the publishing interval
		if t.sampling > 0 {
			p.SamplingInterval = float64(t.sampling) / float64(time.Millisecond)
		}
		if t.deadband != nil {
			p.Filter = ua.NewExtensionObject(t.deadband)
		}
		reqs = append(reqs, &ua.MonitoredItemCreateRequest{
			ItemToMonitor:       &ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}},
			MonitoringMode:      ua.MonitoringModeReporting,
			RequestedParameters: p,
		})
		handles = append(handles, uint32(i))
	}
	// The pulse: the server's clock, which servers update every second. Its notifications
	// prove the publish path alive when the meters are quiet (keep-alives are not surfaced).
	reqs = append(reqs, opcua.NewMonitoredItemCreateRequestWithDefaults(
		ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), ua.AttributeIDValue, pulseHandle))
	handles = append(handles, pulseHandle)

	gw := s.now()
	for off := 0; off < len(reqs); off += monitorBatch {
		end := min(off+monitorBatch, len(reqs))
		res, err := sub.Monitor(ctx, ua.TimestampsToReturnBoth, reqs[off:end]...)
		if err != nil {
			return fmt.Errorf("opcua %s: create %d monitored items: %w", s.cfg.Endpoint, end-off, err)
		}
		if len(res.Results) != end-off {
			return fmt.Errorf("opcua %s: create %d monitored items: %d results", s.cfg.Endpoint, end-off, len(res.Results))
		}
		for i, r := range res.Results {
			h := handles[off+i]
			switch {
			case r.StatusCode == ua.StatusOK || uint32(r.StatusCode)&severityMask == 0:
				if h != pulseHandle {
					sess.items++
				}
			case h == pulseHandle:
				s.log.Debug("opcua server refuses to monitor its clock", "status", r.StatusCode)
			default:
				t := &s.tags[h]
				s.log.Warn("opcua monitored item refused", "tag", t.name, "node", t.node, "status", r.StatusCode)
				sess.mu.Lock()
				sess.pending = append(sess.pending, badReading(t, r.StatusCode, gw))
				sess.mu.Unlock()
			}
		}
	}
	return nil
}

func badReading(t *tag, code ua.StatusCode, gw time.Time) reading.Reading {
	return reading.Reading{Tag: t.name, Unit: t.unit, Time: gw.UnixNano(), TimeSource: reading.TimeGateway, Quality: Quality(code)}
}

// consume moves notifications into the buffer until ctx ends. It never blocks gopcua's
// publish loop for longer than a conversion: when the buffer is full the oldest readings
// go (counted and logged once per episode).
func (sess *session) consume(ctx context.Context, notif <-chan *opcua.PublishNotificationData) {
	s := sess.src
	for {
		var n *opcua.PublishNotificationData
		select {
		case <-ctx.Done():
			return
		case n = <-notif:
		}
		now := s.now()
		if n.Error != nil {
			if fatalPublishError(n.Error) {
				sess.fail(n.Error)
			} else {
				s.log.Debug("opcua publish notification error", "err", n.Error)
			}
			continue
		}
		switch v := n.Value.(type) {
		case *ua.DataChangeNotification:
			sess.mu.Lock()
			sess.lastNotify = now
			for _, it := range v.MonitoredItems {
				if it == nil {
					continue
				}
				if it.ClientHandle == pulseHandle {
					sess.pulses++
					continue
				}
				if int(it.ClientHandle) >= len(s.tags) {
					continue
				}
				sess.push(s.convert(&s.tags[it.ClientHandle], it.Value, now))
			}
			sess.mu.Unlock()
		case *ua.StatusChangeNotification:
			if uint32(v.Status)&severityMask != 0 {
				sess.fail(fmt.Errorf("subscription status %w", v.Status))
			}
		}
	}
}

// fatalPublishError reports whether a publish error means the subscription is gone.
func fatalPublishError(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	var sc ua.StatusCode
	return errors.As(err, &sc) && uint32(sc)&severityMask != 0 && sc != ua.StatusBadTimeout
}

// push appends r to the buffer; sess.mu is held.
func (sess *session) push(r reading.Reading) {
	if len(sess.buf) >= sess.src.maxBuf {
		if sess.dropped == 0 {
			sess.src.log.Warn("opcua buffer full: oldest readings dropped (Read is not called often enough)", "max", sess.src.maxBuf)
		}
		sess.dropped++
		sess.buf = append(sess.buf[:0], sess.buf[1:]...)
	}
	sess.buf = append(sess.buf, r)
}

func (sess *session) fail(err error) {
	sess.mu.Lock()
	if sess.err == nil {
		sess.err = err
	}
	sess.mu.Unlock()
}

func (sess *session) failed() error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.err
}

// silentFor is how long the session has had no notification, or 0 while the server has
// not shown that it pulses.
func (sess *session) silentFor(now time.Time) time.Duration {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.pulses < 2 {
		return 0
	}
	return now.Sub(sess.lastNotify)
}

// drain returns the pending Bad readings and what the consumer buffered, and empties both.
func (sess *session) drain() []reading.Reading {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	out := append(sess.pending, sess.buf...)
	sess.pending = nil
	sess.buf = make([]reading.Reading, 0, cap(sess.buf))
	if sess.dropped > 0 {
		sess.src.log.Info("opcua buffer drained", "dropped", sess.dropped)
		sess.dropped = 0
	}
	return out
}

func (sess *session) takePending() []reading.Reading {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	out := sess.pending
	sess.pending = nil
	return out
}

// close closes the client (CloseSession bounded by closeTimeout) and stops the consumer.
func (sess *session) close() {
	closeClient(sess.c)
	sess.cancel()
	if sess.done != nil {
		<-sess.done
	}
}

func closeClient(c *opcua.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = c.Close(ctx)
}
