package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mrv-agent/mrv-agent/reading"
)

// errAckTimeout reports a PUBACK that did not arrive within Config.AckTimeout.
var errAckTimeout = errors.New("no PUBACK within the ack timeout")

// session is one MQTT connection: one paho client, never reused after it ends. Everything
// it holds from the Queue is a copy that dies with it.
type session struct {
	p      *Publisher
	gen    uint64
	client mqtt.Client

	lost    chan error    // capacity 1, from paho's connection-lost handler
	down    bool          // lost was received: paho has stopped the client's workers
	sendq   chan pubReq   // to the sender goroutine; capacity Inflight+2, so never full
	results chan result   // capacity Inflight+2: watchers never wait long
	stop    chan struct{} // closed when the session ends: its goroutines exit

	// connMu guards conn, the socket under the client (closed to tear it down abruptly).
	connMu sync.Mutex
	conn   net.Conn
	closed bool

	streams  map[string]*streamState
	order    []string // sorted stream names; rr indexes the next stream's turn
	rr       int
	inflight int
	rateWait time.Duration // > 0 when the last fill stopped at the rate limit
	// stale is set when new blocks may have been committed (a Wake, the poll tick, the
	// start): fill then reads every stream again. A PUBACK alone frees a window slot but
	// adds no block, so a stream found dry stays dry until then.
	stale bool
	job   *resendJob // the republication being served
	death []byte     // this connection's will, also published on a clean stop
}

// streamState is a stream's position within one session.
type streamState struct {
	next    uint64             // the next seq to publish
	buf     []reading.Envelope // fetched, not yet published
	pending []*flight          // published, oldest first; the head is never acked
	dry     bool               // Next had nothing during the current fill
}

// flight is one block publish awaiting its PUBACK.
type flight struct {
	stream  string
	lastSeq uint64
	sent    time.Time
	acked   bool
	resend  bool // a republication: its PUBACK moves no cursor
}

type result struct {
	gen uint64
	f   *flight
	err error
}

// pubReq asks the sender goroutine to publish. A block publish (f != nil) reports its
// completion on results; any other hands its token back on tok.
type pubReq struct {
	topic    string
	payload  []byte
	retained bool
	f        *flight
	tok      chan mqtt.Token // capacity 1
}

// connect builds a fresh paho client and connects it. ctx aborts the dial and the
// handshake.
func (p *Publisher) connect(ctx context.Context) (*session, error) {
	p.gen++
	s := &session{
		p:       p,
		gen:     p.gen,
		lost:    make(chan error, 1),
		sendq:   make(chan pubReq, p.cfg.Inflight+2),
		results: make(chan result, p.cfg.Inflight+2),
		stop:    make(chan struct{}),
		streams: make(map[string]*streamState),
	}
	opts := mqtt.NewClientOptions().
		AddBroker(p.broker.String()).
		SetClientID(p.cfg.ClientID).
		SetProtocolVersion(4). // 3.1.1, and no silent fallback to 3.1
		SetCleanSession(true).
		SetAutoReconnect(false). // LIBRARIES.md §3: reconnects complete tokens without a PUBACK
		SetConnectRetry(false).
		SetOrderMatters(false).
		SetKeepAlive(keepAlive).
		SetPingTimeout(pingTimeout).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(writeTimeout).
		SetStore(mqtt.NewMemoryStore()).
		SetCustomOpenConnectionFn(func(u *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			return s.dial(ctx, u)
		}).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case s.lost <- err:
			default:
			}
		})
	if p.cfg.Username != "" || p.cfg.Password != "" {
		opts.SetUsername(p.cfg.Username).SetPassword(p.cfg.Password)
	}
	s.death = p.cfg.Death
	if p.cfg.DeathFunc != nil {
		if d, err := p.cfg.DeathFunc(); err != nil {
			p.log.Error("death message unavailable", "err", err)
		} else {
			s.death = d
		}
	}
	if s.death != nil {
		opts.SetBinaryWill(StatusTopic(p.cfg.Site, p.cfg.Gateway), s.death, 1, true)
	}
	s.client = mqtt.NewClient(opts)

	tok := s.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		s.closeConn()
		waitDone(tok.Done(), teardownWait)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		s.closeConn()
		return nil, fmt.Errorf("connect: %w", explainConnectError(err, p.broker.Host, isTLS(p.broker), p.cfg.CAFile, p.cfg.CertFile))
	}
	p.updateStats(func(st *Stats) { st.Connected = true })
	p.bg.Add(1)
	go s.sender()
	return s, nil
}

// sender calls paho's Publish for the session, in the order asked. It is a goroutine of
// its own because Publish can block (up to writeTimeout) when the connection dies between
// its connected check and the hand-off to paho's writer; the supervisor must stay free
// to see the loss. It exits when the session stops, at the latest writeTimeout later.
func (s *session) sender() {
	defer s.p.bg.Done()
	for {
		var req pubReq
		select {
		case <-s.stop:
			return
		case req = <-s.sendq:
		}
		select {
		case <-s.stop:
			return
		default:
		}
		tok := s.client.Publish(req.topic, 1, req.retained, req.payload)
		if req.f == nil {
			req.tok <- tok
			continue
		}
		s.p.bg.Add(1)
		go s.watch(tok, req.f)
	}
}

// watch reports a block publish's completion to the supervisor.
func (s *session) watch(tok mqtt.Token, f *flight) {
	defer s.p.bg.Done()
	select {
	case <-tok.Done():
	case <-s.stop:
		return
	}
	select {
	case s.results <- result{gen: s.gen, f: f, err: tok.Error()}:
	case <-s.stop:
	}
}

// publishControl publishes a retained message on the status topic through the sender
// and waits for its PUBACK, the loss of the connection, wait or done.
func (s *session) publishControl(payload []byte, wait time.Duration, done <-chan struct{}) error {
	req := pubReq{topic: StatusTopic(s.p.cfg.Site, s.p.cfg.Gateway), payload: payload, retained: true, tok: make(chan mqtt.Token, 1)}
	s.sendq <- req
	t := time.NewTimer(wait)
	defer t.Stop()
	var tok mqtt.Token
	select {
	case tok = <-req.tok:
	case err := <-s.lost:
		s.down = true
		return fmt.Errorf("connection lost: %w", err)
	case <-t.C:
		return errAckTimeout
	case <-done:
		return context.Canceled
	}
	select {
	case <-tok.Done():
		return tok.Error()
	case err := <-s.lost:
		s.down = true
		return fmt.Errorf("connection lost: %w", err)
	case <-t.C:
		return errAckTimeout
	case <-done:
		return context.Canceled
	}
}

// dial opens the socket paho speaks MQTT over; keeping it lets the session close it
// without sending DISCONNECT, so that the broker publishes the will.
func (s *session) dial(ctx context.Context, u *url.URL) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	conn := raw
	if isTLS(u) {
		cfg := s.p.cfg.TLS
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			cfg = cfg.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		_ = raw.Close()
		return nil, net.ErrClosed
	}
	s.conn = raw
	return conn, nil
}

// closeConn closes the socket under the client (used while connecting).
func (s *session) closeConn() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.closed = true
	if s.conn != nil {
		_ = s.conn.Close()
	}
}

// breakConn makes the client's next read fail: paho then reports the connection lost,
// completes every pending token with an error and closes the socket, without sending
// DISCONNECT (so the broker publishes the will). Closing the socket ourselves would not
// do: paho takes "use of closed network connection" for its own shutdown and stays
// half-alive until a keepalive write fails.
func (s *session) breakConn() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.conn != nil {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

func waitDone(c <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
		return true
	case <-t.C:
		return false
	}
}

// run publishes until the connection fails (returning why) or ctx is done (returning nil
// after the bounded shutdown). The client is finished when run returns.
func (s *session) run(ctx context.Context) error {
	err := s.serve(ctx)
	if err == nil {
		err = s.shutdown(ctx)
	} else {
		s.teardown()
	}
	s.p.updateStats(func(st *Stats) { st.Connected, st.InFlight = false, 0 })
	return err
}

func (s *session) serve(ctx context.Context) error {
	if err := s.publishBirth(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	s.subscribeResend()
	s.initStreams()
	s.stale = true
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	rate := time.NewTimer(time.Hour)
	rate.Stop()
	defer rate.Stop()
	for {
		if err := s.fill(); err != nil {
			return err
		}
		if s.rateWait > 0 {
			rate.Reset(s.rateWait)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-s.lost:
			s.down = true
			return fmt.Errorf("connection lost: %w", err)
		case r := <-s.results:
			if err := s.complete(r); err != nil {
				return err
			}
		case <-s.p.wake:
			s.stale = true
		case <-rate.C:
		case now := <-poll.C:
			s.stale = true
			if s.overdue(now) {
				return errAckTimeout
			}
		}
	}
}

// publishBirth publishes the birth message and waits for its PUBACK.
func (s *session) publishBirth(ctx context.Context) error {
	if s.p.cfg.Birth == nil {
		return nil
	}
	b, err := s.p.cfg.Birth()
	if err != nil {
		// The blocks are signed already and worth publishing without it; the next
		// connect tries again.
		s.p.updateStats(func(st *Stats) { st.LastError = "birth: " + err.Error() })
		s.p.log.Error("birth message unavailable", "err", err)
		return nil
	}
	err = s.publishControl(b, s.p.cfg.AckTimeout, ctx.Done())
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("publish birth: %w", err)
	}
	return nil
}

// subscribeResend subscribes to the gateway's cmd/resend topic for this connection. A
// failure is logged and publishing goes on: resends are a service to verifiers, blocks are
// the job.
func (s *session) subscribeResend() {
	if s.p.cfg.OnResend == nil {
		return
	}
	topic := ResendTopic(s.p.cfg.Site, s.p.cfg.Gateway)
	tok := s.client.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { s.p.cfg.OnResend(m.Payload()) })
	if !tok.WaitTimeout(s.p.cfg.AckTimeout) {
		s.p.log.Warn("resend topic: no SUBACK", "topic", topic)
	} else if err := tok.Error(); err != nil {
		s.p.log.Warn("resend topic: subscribe failed", "topic", topic, "err", err)
	}
}

// fillResend publishes requested republications while the window has room. It reports
// false when it stopped at the window or the rate limit (new blocks wait too).
func (s *session) fillResend(window int) bool {
	for s.inflight < window {
		if s.job == nil {
			select {
			case j := <-s.p.resend:
				s.job = &j
			default:
				return true
			}
		}
		j := s.job
		envs, err := s.p.q.Next(j.stream, j.next, min(window-s.inflight, fetchBatch))
		if err != nil {
			s.p.log.Warn("resend: queue read failed", "stream", j.stream, "seq", j.next, "err", err)
			s.job = nil
			continue
		}
		for _, env := range envs {
			if env.FirstSeq > j.last || env.Records < 1 {
				break
			}
			if wait := s.p.limiter.take(time.Now()); wait > 0 {
				s.rateWait = wait
				return false
			}
			f := &flight{stream: j.stream, lastSeq: env.LastSeq(), sent: time.Now(), resend: true}
			s.inflight++
			s.sendq <- pubReq{topic: Topic(s.p.cfg.Site, s.p.cfg.Gateway, j.stream), payload: env.Bytes, f: f}
			j.next = env.LastSeq() + 1
		}
		if len(envs) == 0 || j.next > j.last || envs[len(envs)-1].FirstSeq > j.last {
			s.p.log.Info("resend served", "stream", j.stream, "up_to", j.next-1)
			s.job = nil
		}
	}
	return false
}

// initStreams sets each stream's start: the lowest unacknowledged seq.
func (s *session) initStreams() {
	for _, name := range s.p.q.Streams() {
		s.addStream(name)
	}
}

func (s *session) addStream(name string) {
	if _, ok := s.streams[name]; ok || !reading.ValidSegment(name) {
		return
	}
	next := s.p.q.Cursor(name)
	if m, ok := s.p.marked[name]; ok && m+1 > next {
		next = m + 1 // the store's cursor lags what we marked: never go back
	}
	s.streams[name] = &streamState{next: next}
	i, _ := slices.BinarySearch(s.order, name)
	s.order = slices.Insert(s.order, i, name)
	if i < s.rr {
		s.rr++
	}
}

// fill publishes blocks until the window is full, the rate limit stops it or no stream
// has more, taking one block per stream per turn.
func (s *session) fill() error {
	s.rateWait = 0
	window := s.p.cfg.Inflight
	if s.inflight >= window || !s.fillResend(window) {
		return nil
	}
	if s.stale {
		s.stale = false
		for _, name := range s.p.q.Streams() {
			s.addStream(name)
		}
		for _, st := range s.streams {
			st.dry = false
		}
	}
	n := len(s.order)
	idle := 0 // consecutive streams without a block to publish
	for s.inflight < window && idle < n {
		i := s.rr % n
		s.rr = (i + 1) % n
		name := s.order[i]
		st := s.streams[name]
		env, ok := s.peek(name, st)
		if !ok {
			idle++
			continue
		}
		if wait := s.p.limiter.take(time.Now()); wait > 0 {
			s.rr = i // this stream keeps its turn
			s.rateWait = wait
			return nil
		}
		idle = 0
		st.buf = st.buf[1:]
		st.next = env.LastSeq() + 1
		s.publish(name, st, env)
	}
	return nil
}

// peek returns the stream's next block to publish, fetching a batch when none is buffered.
func (s *session) peek(name string, st *streamState) (reading.Envelope, bool) {
	for {
		for len(st.buf) > 0 {
			env := st.buf[0]
			if env.Records >= 1 && env.LastSeq() >= st.next {
				return env, true
			}
			st.buf = st.buf[1:] // stale or malformed: Next must not return it
			if env.Records < 1 {
				s.p.log.Error("queue returned an envelope without records", "stream", name, "seq", env.FirstSeq)
			}
		}
		if st.dry {
			return reading.Envelope{}, false
		}
		batch := min(s.p.cfg.Inflight, fetchBatch)
		envs, err := s.p.q.Next(name, st.next, batch)
		if err != nil {
			msg := fmt.Sprintf("read stream %s from seq %d: %v", name, st.next, err)
			s.p.updateStats(func(stats *Stats) { stats.LastError = msg })
			s.p.log.Warn("queue read failed", "stream", name, "seq", st.next, "err", err)
			st.dry = true
			return reading.Envelope{}, false
		}
		if len(envs) == 0 {
			st.dry = true
			return reading.Envelope{}, false
		}
		st.buf = envs
		st.dry = len(envs) < batch
	}
}

// publish sends one block and starts watching its token.
func (s *session) publish(name string, st *streamState, env reading.Envelope) {
	f := &flight{stream: name, lastSeq: env.LastSeq(), sent: time.Now()}
	st.pending = append(st.pending, f)
	s.inflight++
	s.p.updateStats(func(stats *Stats) { stats.InFlight = s.inflight })
	s.sendq <- pubReq{topic: Topic(s.p.cfg.Site, s.p.cfg.Gateway, name), payload: env.Bytes, f: f}
}

// complete handles one token completion: an error ends the session; a PUBACK marks the
// stream's acknowledged prefix published.
func (s *session) complete(r result) error {
	if r.gen != s.p.gen || r.gen != s.gen {
		return nil // from an earlier connection: its PUBACK proves nothing now
	}
	s.inflight--
	s.p.updateStats(func(stats *Stats) { stats.InFlight = s.inflight })
	if r.err != nil {
		return fmt.Errorf("publish %s up to seq %d: %w", r.f.stream, r.f.lastSeq, r.err)
	}
	if r.f.resend {
		return nil
	}
	r.f.acked = true
	if s.p.cfg.OnPubAck != nil {
		s.p.cfg.OnPubAck(time.Since(r.f.sent))
	}
	st := s.streams[r.f.stream]
	n := 0
	for n < len(st.pending) && st.pending[n].acked {
		n++
	}
	if n == 0 {
		return nil // an earlier block of the stream is still unacknowledged: hold this one
	}
	last := st.pending[n-1].lastSeq
	st.pending = st.pending[n:]
	if m, ok := s.p.marked[r.f.stream]; !ok || last > m {
		s.p.marked[r.f.stream] = last
		s.p.q.MarkPublished(r.f.stream, last)
	}
	now := time.Now()
	s.p.updateStats(func(stats *Stats) {
		stats.Published += uint64(n)
		stats.LastAck = now
	})
	return nil
}

// overdue reports whether some publish has waited longer than the ack timeout.
func (s *session) overdue(now time.Time) bool {
	for _, st := range s.streams {
		if len(st.pending) > 0 && now.Sub(st.pending[0].sent) > s.p.cfg.AckTimeout {
			return true
		}
	}
	return false
}

// teardown ends a failed session: the socket is closed without DISCONNECT (the broker
// sends the will), pending tokens fail, and the client is dropped.
func (s *session) teardown() {
	if !s.down {
		s.breakConn()
		select {
		case err := <-s.lost: // paho has stopped its workers
			s.p.log.Debug("mqtt client stopped", "err", err)
			s.down = true
		case <-time.After(teardownWait):
			s.p.log.Debug("mqtt client slow to stop")
		}
	}
	s.closeConn()
	close(s.stop)
}

// shutdown ends the session on a clean stop: it waits (bounded) for the PUBACKs in
// flight, publishes the death message and disconnects.
func (s *session) shutdown(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWait)
	defer cancel()
	deadline, _ := wctx.Deadline()
	alive := true
	for alive && s.inflight > 0 {
		select {
		case r := <-s.results:
			if err := s.complete(r); err != nil {
				alive = false
			}
		case err := <-s.lost:
			s.p.log.Debug("mqtt connection lost during shutdown", "err", err)
			s.down, alive = true, false
		case <-wctx.Done():
			alive = false
		}
	}
	if alive && s.p.cfg.DeathFunc != nil {
		// On a clean stop the death can say where the chains ended.
		if d, err := s.p.cfg.DeathFunc(); err == nil {
			s.death = d
		}
	}
	if alive && s.death != nil {
		if err := s.publishControl(s.death, time.Until(deadline), nil); err != nil {
			s.p.log.Warn("death message not acknowledged", "err", err)
			alive = false
		}
	}
	if alive {
		// DISCONNECT makes the broker discard the will: only once the death message is
		// acknowledged. Otherwise teardown closes the socket and the broker sends the will.
		s.client.Disconnect(quiesce)
		s.down = true
		s.p.log.Info("mqtt disconnected")
	}
	s.teardown()
	return nil
}
