package uplink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testSite    = "site1"
	testGateway = "gw1"
	testClient  = "agent-under-test"
)

// fakeQueue is an in-memory Queue. Envelope bytes are "stream:firstSeq:records".
type fakeQueue struct {
	t *testing.T

	mu      sync.Mutex
	blocks  map[string][]reading.Envelope
	cursor  map[string]uint64
	marks   map[string][]uint64 // every MarkPublished call, in order
	nextErr error
	nexts   map[string]int // Next calls per stream
}

var _ Queue = (*fakeQueue)(nil)

func newFakeQueue(t *testing.T) *fakeQueue {
	return &fakeQueue{t: t, blocks: map[string][]reading.Envelope{}, cursor: map[string]uint64{}, marks: map[string][]uint64{}}
}

// add appends n blocks of records records each to stream and returns the last seq.
func (q *fakeQueue) add(stream string, n, records int) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next uint64
	if b := q.blocks[stream]; len(b) > 0 {
		next = b[len(b)-1].LastSeq() + 1
	}
	for range n {
		q.blocks[stream] = append(q.blocks[stream], reading.Envelope{
			Stream: stream, FirstSeq: next, Records: records,
			Bytes: fmt.Appendf(nil, "%s:%d:%d", stream, next, records),
		})
		next += uint64(records)
	}
	return next - 1
}

func (q *fakeQueue) Streams() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var s []string
	for k := range q.blocks {
		s = append(s, k)
	}
	return s
}

func (q *fakeQueue) Cursor(stream string) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cursor[stream]
}

func (q *fakeQueue) Next(stream string, from uint64, limit int) ([]reading.Envelope, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.nexts == nil {
		q.nexts = map[string]int{}
	}
	q.nexts[stream]++
	if q.nextErr != nil {
		return nil, q.nextErr
	}
	var out []reading.Envelope
	for _, e := range q.blocks[stream] {
		if e.LastSeq() >= from && len(out) < limit {
			e.Bytes = slices.Clone(e.Bytes)
			out = append(out, e)
		}
	}
	return out, nil
}

func (q *fakeQueue) MarkPublished(stream string, lastSeq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m := q.marks[stream]; len(m) > 0 && lastSeq <= m[len(m)-1] {
		q.t.Errorf("MarkPublished(%s, %d) after %d: not increasing", stream, lastSeq, m[len(m)-1])
	}
	q.marks[stream] = append(q.marks[stream], lastSeq)
	q.cursor[stream] = lastSeq + 1
}

func (q *fakeQueue) cursorOf(stream string) uint64 { return q.Cursor(stream) }

func (q *fakeQueue) markCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, m := range q.marks {
		n += len(m)
	}
	return n
}

// gate is a broker hook that counts the agent's block publishes, tracks how many are
// unacknowledged from the broker's side, and withholds PUBACKs while reject is set.
type gate struct {
	mqtt.HookBase
	reject atomic.Bool

	mu          sync.Mutex
	received    int
	outstanding int
	maxOut      int
}

func (g *gate) ID() string { return "gate" }

func (g *gate) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnPacketSent || b == mqtt.OnDisconnect
}

func (g *gate) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.ID != testClient || !strings.HasSuffix(pk.TopicName, "/blocks") {
		return pk, nil
	}
	g.mu.Lock()
	g.received++
	g.outstanding++
	g.maxOut = max(g.maxOut, g.outstanding)
	g.mu.Unlock()
	if g.reject.Load() {
		return pk, packets.ErrRejectPacket // mochi then sends no PUBACK
	}
	return pk, nil
}

func (g *gate) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if cl.ID == testClient && pk.FixedHeader.Type == packets.Puback {
		g.mu.Lock()
		g.outstanding--
		g.mu.Unlock()
	}
}

func (g *gate) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if cl.ID == testClient {
		g.mu.Lock()
		g.outstanding = 0
		g.mu.Unlock()
	}
}

func (g *gate) counts() (received, maxOut int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.received, g.maxOut
}

// env is a test setup: broker, relay in front of it, subscriber on the broker directly.
type env struct {
	t      *testing.T
	broker *sim.Broker
	relay  *sim.Relay
	gate   *gate
	sub    *subscriber
}

func newEnv(t *testing.T) *env {
	t.Helper()
	g := new(gate)
	b, err := sim.StartBroker("127.0.0.1:0", nil, g)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	r, err := sim.NewRelay(b.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	e := &env{t: t, broker: b, relay: r, gate: g}
	e.sub = e.subscribe("mrv/v1/#")
	return e
}

func (e *env) config() Config {
	var logger *slog.Logger
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return Config{
		URL:      "mqtt://" + e.relay.Addr(),
		ClientID: testClient,
		Inflight: 8,
		Site:     testSite,
		Gateway:  testGateway,
		Logger:   logger,
	}
}

// start runs a Publisher until the returned stop is called (or the test ends).
func (e *env) start(cfg Config, q Queue) (*Publisher, func() error) {
	e.t.Helper()
	p, err := New(cfg, q)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(10 * time.Second):
				runErr = fmt.Errorf("Run did not return")
			}
		})
		return runErr
	}
	e.t.Cleanup(func() { _ = stop() })
	return p, stop
}

type message struct {
	topic    string
	payload  string
	retained bool
}

type subscriber struct {
	client paho.Client
	mu     sync.Mutex
	msgs   []message
}

func (e *env) subscribe(filter string) *subscriber {
	e.t.Helper()
	s := new(subscriber)
	opts := paho.NewClientOptions().AddBroker(e.broker.URL()).
		SetClientID(fmt.Sprintf("sub-%d", time.Now().UnixNano())).
		SetAutoReconnect(false)
	s.client = paho.NewClient(opts)
	tok := s.client.Connect()
	require.True(e.t, tok.WaitTimeout(5*time.Second))
	require.NoError(e.t, tok.Error())
	tok = s.client.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		s.mu.Lock()
		s.msgs = append(s.msgs, message{m.Topic(), string(m.Payload()), m.Retained()})
		s.mu.Unlock()
	})
	require.True(e.t, tok.WaitTimeout(5*time.Second))
	require.NoError(e.t, tok.Error())
	e.t.Cleanup(func() { s.client.Disconnect(100) })
	return s
}

func (s *subscriber) messages() []message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// firstSeqs returns the first seqs of the blocks received for stream, in arrival order.
func (s *subscriber) firstSeqs(stream string) []uint64 {
	var out []uint64
	topic := Topic(testSite, testGateway, stream)
	for _, m := range s.messages() {
		if m.topic != topic {
			continue
		}
		parts := strings.Split(m.payload, ":")
		n, _ := strconv.ParseUint(parts[1], 10, 64)
		out = append(out, n)
	}
	return out
}

// status returns the payloads published on the status topic while subscribed. Retained
// copies are left out: mochi may deliver a message that arrives during a SUBSCRIBE both
// live and as retained.
func (s *subscriber) status() []string {
	var out []string
	for _, m := range s.messages() {
		if m.topic == StatusTopic(testSite, testGateway) && !m.retained {
			out = append(out, m.payload)
		}
	}
	return out
}

// wantFirstSeqs lists the first seqs of n blocks of size records starting at 0.
func wantFirstSeqs(n, records int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i * records)
	}
	return out
}

// firstOccurrences drops repeats, keeping each seq where it first arrived.
func firstOccurrences(seqs []uint64) []uint64 {
	seen := map[uint64]bool{}
	var out []uint64
	for _, s := range seqs {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

const (
	waitFor = 10 * time.Second
	tick    = 10 * time.Millisecond
)

func TestPublishesStreamsInOrder(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	lastA := q.add("kiln1", 60, 1)
	lastB := q.add("potline", 40, 3)
	cfg := e.config()
	cfg.Inflight = 4
	p, stop := e.start(cfg, q)

	require.Eventually(t, func() bool {
		return q.cursorOf("kiln1") == lastA+1 && q.cursorOf("potline") == lastB+1
	}, waitFor, tick)

	// Blocks committed later go out on Wake.
	lastA = q.add("kiln1", 5, 1)
	p.Wake()
	require.Eventually(t, func() bool { return q.cursorOf("kiln1") == lastA+1 }, waitFor, tick)

	require.Eventually(t, func() bool { return len(e.sub.firstSeqs("kiln1")) == 65 }, waitFor, tick)
	require.Eventually(t, func() bool { return len(e.sub.firstSeqs("potline")) == 40 }, waitFor, tick)
	require.Equal(t, wantFirstSeqs(65, 1), e.sub.firstSeqs("kiln1"))
	require.Equal(t, wantFirstSeqs(40, 3), e.sub.firstSeqs("potline"))
	for _, m := range e.sub.messages() {
		if strings.HasSuffix(m.topic, "/blocks") {
			require.False(t, m.retained, m.topic)
		}
	}

	st := p.Stats()
	require.True(t, st.Connected)
	require.Equal(t, uint64(105), st.Published)
	require.Zero(t, st.InFlight)
	require.Zero(t, st.Reconnects)
	require.False(t, st.LastAck.IsZero())

	_, maxOut := e.gate.counts()
	require.LessOrEqual(t, maxOut, cfg.Inflight, "broker saw more unacknowledged publishes than Inflight")
	require.GreaterOrEqual(t, maxOut, 1)
	require.NoError(t, stop())
	require.False(t, p.Stats().Connected)
}

// TestIdleStreamsNotReadPerAck: a PUBACK frees a window slot but adds no block, so streams
// found empty are not read again until a Wake or the poll tick (each read is a bbolt
// transaction; with 65 streams and a drain, re-reading them all per PUBACK was most of the
// uplink's cost and kept pages of the buffer file mapped).
func TestIdleStreamsNotReadPerAck(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	last := q.add("busy", 200, 1)
	for i := range 20 {
		q.add(fmt.Sprintf("idle%02d", i), 1, 1)
	}
	cfg := e.config()
	cfg.Inflight = 2
	_, _ = e.start(cfg, q)
	require.Eventually(t, func() bool { return q.cursorOf("busy") == last+1 }, waitFor, tick)
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range 20 {
		// The first read returns its block, the next finds it dry; a few more come from
		// poll ticks during the test. Per PUBACK it would be about 100.
		require.LessOrEqual(t, q.nexts[fmt.Sprintf("idle%02d", i)], 10, "idle%02d", i)
	}
	require.GreaterOrEqual(t, q.nexts["busy"], 50, "the busy stream is read as it drains")
}

func TestRoundRobinAcrossStreams(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	q.add("a", 30, 1)
	q.add("b", 30, 1)
	q.add("c", 3, 1)
	cfg := e.config()
	cfg.Inflight = 1 // one block at a time: the arrival order is the publish order
	_, _ = e.start(cfg, q)
	require.Eventually(t, func() bool { return q.markCount() == 63 }, waitFor, tick)
	require.Eventually(t, func() bool { return len(e.sub.messages()) == 63 }, waitFor, tick)

	var order []string
	for _, m := range e.sub.messages() {
		if strings.HasSuffix(m.topic, "/blocks") {
			order = append(order, strings.Split(m.payload, ":")[0])
		}
	}
	require.Len(t, order, 63)
	// c's three blocks go out within the first rounds, not after a and b drain.
	require.Equal(t, []string{"a", "b", "c", "a", "b", "c", "a", "b", "c", "a", "b"}, order[:11])
}

func TestBirthAndDeath(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	var births atomic.Int32
	cfg := e.config()
	cfg.Birth = func() ([]byte, error) { return fmt.Appendf(nil, "birth-%d", births.Add(1)), nil }
	cfg.Death = []byte("death")
	p, stop := e.start(cfg, q)

	require.Eventually(t, func() bool { return slices.Equal(e.sub.status(), []string{"birth-1"}) }, waitFor, tick)
	// Retained: a late subscriber gets it.
	late := e.subscribe(StatusTopic(testSite, testGateway))
	require.Eventually(t, func() bool { return len(late.messages()) == 1 }, waitFor, tick)
	require.Equal(t, message{StatusTopic(testSite, testGateway), "birth-1", true}, late.messages()[0])

	// A dropped connection: the broker sends the will; the reconnect sends a new birth.
	e.relay.DropAll()
	require.Eventually(t, func() bool {
		return slices.Equal(e.sub.status(), []string{"birth-1", "death", "birth-2"})
	}, waitFor, tick)
	require.Eventually(t, func() bool { return p.Stats().Reconnects == 1 }, waitFor, tick)

	// Clean stop: death published (retained), then DISCONNECT (no second will).
	require.NoError(t, stop())
	require.Eventually(t, func() bool {
		return slices.Equal(e.sub.status(), []string{"birth-1", "death", "birth-2", "death"})
	}, waitFor, tick)
	late2 := e.subscribe(StatusTopic(testSite, testGateway))
	require.Eventually(t, func() bool { return len(late2.messages()) == 1 }, waitFor, tick)
	require.Equal(t, message{StatusTopic(testSite, testGateway), "death", true}, late2.messages()[0])
}

func TestWithheldPubackIsNotMarked(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	last := q.add("kiln1", 20, 2)
	e.gate.reject.Store(true)
	cfg := e.config()
	cfg.Inflight = 5
	p, _ := e.start(cfg, q)

	// The window fills and stays full: nothing more is sent, nothing is marked.
	require.Eventually(t, func() bool { n, _ := e.gate.counts(); return n == 5 }, waitFor, tick)
	require.Never(t, func() bool {
		n, _ := e.gate.counts()
		return n != 5 || q.markCount() != 0
	}, 300*time.Millisecond, tick)
	st := p.Stats()
	require.Equal(t, 5, st.InFlight)
	require.Zero(t, st.Published)
	require.Zero(t, q.cursorOf("kiln1"))

	// The broker acks again and the connection drops: everything is resent and marked.
	e.gate.reject.Store(false)
	e.relay.DropAll()
	require.Eventually(t, func() bool { return q.cursorOf("kiln1") == last+1 }, waitFor, tick)
	require.Eventually(t, func() bool { return len(e.sub.firstSeqs("kiln1")) == 20 }, waitFor, tick)
	require.Equal(t, wantFirstSeqs(20, 2), e.sub.firstSeqs("kiln1"))
	n, _ := e.gate.counts()
	require.Equal(t, 25, n, "the 5 unacknowledged blocks were resent once")
	require.Equal(t, uint64(1), p.Stats().Reconnects)
	require.Equal(t, uint64(20), p.Stats().Published)
}

func TestAckTimeoutReconnects(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	last := q.add("kiln1", 10, 1)
	e.gate.reject.Store(true)
	cfg := e.config()
	cfg.Inflight = 3
	cfg.AckTimeout = 200 * time.Millisecond
	p, _ := e.start(cfg, q)

	// No PUBACK: the Publisher gives up on the connection by itself and resends.
	require.Eventually(t, func() bool { return p.Stats().Reconnects >= 1 }, waitFor, tick)
	require.Eventually(t, func() bool { n, _ := e.gate.counts(); return n >= 6 }, waitFor, tick)
	require.Zero(t, q.markCount())
	require.Contains(t, p.Stats().LastError, "PUBACK")

	e.gate.reject.Store(false)
	require.Eventually(t, func() bool { return q.cursorOf("kiln1") == last+1 }, waitFor, tick)
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	cfg := e.config()
	cfg.Inflight = 4
	p, _ := e.start(cfg, q)

	// A producer commits a block to each of two streams every 5 ms; the relay pauses
	// (connections reset, new ones refused) for 1.5 s in the middle.
	const total = 150
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for i := 0; i < total; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			q.add("kiln1", 1, 1)
			q.add("potline", 1, 2)
			p.Wake()
		}
	}()
	require.Eventually(t, func() bool { return q.cursorOf("kiln1") > 20 }, waitFor, tick)
	e.relay.Pause()
	pauseT := time.NewTimer(1500 * time.Millisecond)
	<-pauseT.C
	require.False(t, p.Stats().Connected)
	e.relay.Resume()
	<-produced

	require.Eventually(t, func() bool {
		return q.cursorOf("kiln1") == total && q.cursorOf("potline") == 2*total
	}, 15*time.Second, tick)
	require.Greater(t, p.Stats().Reconnects, uint64(0))
	require.GreaterOrEqual(t, p.Stats().Published, uint64(2*total))
	// Everything arrived (duplicates allowed), each stream in order of first arrival.
	require.Eventually(t, func() bool { return len(firstOccurrences(e.sub.firstSeqs("potline"))) == total }, waitFor, tick)
	require.Eventually(t, func() bool { return len(firstOccurrences(e.sub.firstSeqs("kiln1"))) == total }, waitFor, tick)
	require.Equal(t, wantFirstSeqs(total, 1), firstOccurrences(e.sub.firstSeqs("kiln1")))
	require.Equal(t, wantFirstSeqs(total, 2), firstOccurrences(e.sub.firstSeqs("potline")))
}

func TestDrainRate(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	last := q.add("kiln1", 30, 1)
	cfg := e.config()
	cfg.DrainRate = 20 // burst 20, then 20/s: the last 10 need about 0.5 s
	start := time.Now()
	_, _ = e.start(cfg, q)
	require.Eventually(t, func() bool { return q.cursorOf("kiln1") == last+1 }, waitFor, tick)
	require.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond)
}

func TestUnreachableBrokerStopsCleanly(t *testing.T) {
	e := newEnv(t)
	e.relay.Pause()
	q := newFakeQueue(t)
	q.add("kiln1", 3, 1)
	cfg := e.config()
	cfg.Death = []byte("death")
	p, stop := e.start(cfg, q)
	require.Eventually(t, func() bool { return p.Stats().LastError != "" }, waitFor, tick)
	require.False(t, p.Stats().Connected)
	require.NoError(t, stop())
	require.Zero(t, q.markCount())
}

func TestQueueErrorIsNotFatal(t *testing.T) {
	e := newEnv(t)
	q := newFakeQueue(t)
	last := q.add("kiln1", 5, 1)
	q.nextErr = io.ErrUnexpectedEOF
	p, _ := e.start(e.config(), q)
	require.Eventually(t, func() bool { return strings.Contains(p.Stats().LastError, "unexpected EOF") }, waitFor, tick)
	require.True(t, p.Stats().Connected)
	q.mu.Lock()
	q.nextErr = nil
	q.mu.Unlock()
	p.Wake()
	require.Eventually(t, func() bool { return q.cursorOf("kiln1") == last+1 }, waitFor, tick)
}

// TestCompleteHoldsOutOfOrderAcks drives the ack bookkeeping directly: PUBACKs that
// arrive out of order, and completions from an older connection.
func TestCompleteHoldsOutOfOrderAcks(t *testing.T) {
	q := newFakeQueue(t)
	q.add("s", 3, 2) // blocks 0-1, 2-3, 4-5
	p, err := New(Config{URL: "mqtt://127.0.0.1:1", ClientID: "x", Site: "a", Gateway: "b"}, q)
	require.NoError(t, err)
	p.gen = 2
	s := &session{p: p, gen: 2, streams: map[string]*streamState{}}
	s.addStream("s")
	st := s.streams["s"]
	fs := make([]*flight, 3)
	for i := range fs {
		fs[i] = &flight{stream: "s", lastSeq: uint64(2*i + 1)}
		st.pending = append(st.pending, fs[i])
	}
	s.inflight = 3

	// From generation 1: ignored, even though it says PUBACK.
	require.NoError(t, s.complete(result{gen: 1, f: fs[0]}))
	require.Equal(t, 3, s.inflight)
	// Blocks 2 and 3 acked before block 1: held.
	require.NoError(t, s.complete(result{gen: 2, f: fs[2]}))
	require.NoError(t, s.complete(result{gen: 2, f: fs[1]}))
	require.Empty(t, q.marks["s"])
	require.Equal(t, 1, s.inflight)
	// Block 1 acked: all three marked at once, in order.
	require.NoError(t, s.complete(result{gen: 2, f: fs[0]}))
	require.Equal(t, []uint64{5}, q.marks["s"])
	require.Empty(t, st.pending)
	require.Equal(t, uint64(3), p.Stats().Published)

	// An error completion ends the session.
	f := &flight{stream: "s", lastSeq: 7}
	st.pending = append(st.pending, f)
	s.inflight = 1
	require.Error(t, s.complete(result{gen: 2, f: f, err: paho.ErrNotConnected}))
	require.Equal(t, []uint64{5}, q.marks["s"])

	// A new session starts from the marked position even if the store's cursor lags.
	q.cursor["s"] = 0
	s2 := &session{p: p, gen: 3, streams: map[string]*streamState{}}
	s2.addStream("s")
	require.Equal(t, uint64(6), s2.streams["s"].next)
}

func TestNewRejects(t *testing.T) {
	good := Config{URL: "mqtt://127.0.0.1:1883", ClientID: "c", Site: "s", Gateway: "g"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"scheme", func(c *Config) { c.URL = "http://h:1" }, "scheme"},
		{"no port", func(c *Config) { c.URL = "mqtt://h" }, "host:port"},
		{"path", func(c *Config) { c.URL = "mqtt://h:1/x" }, "path"},
		{"client id", func(c *Config) { c.ClientID = "" }, "client id"},
		{"site", func(c *Config) { c.Site = "Site" }, "site"},
		{"gateway", func(c *Config) { c.Gateway = "" }, "gateway"},
		{"inflight", func(c *Config) { c.Inflight = -1 }, "inflight"},
		{"inflight big", func(c *Config) { c.Inflight = 70000 }, "inflight"},
		{"drain", func(c *Config) { c.DrainRate = -1 }, "drain"},
		{"ack timeout", func(c *Config) { c.AckTimeout = -time.Second }, "ack timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg, newFakeQueue(t))
			require.ErrorContains(t, err, tc.want)
		})
	}
	for _, u := range []string{"mqtt://h:1", "tcp://h:1", "mqtts://h:8883", "ssl://h:1", "tls://[::1]:1"} {
		cfg := good
		cfg.URL = u
		_, err := New(cfg, newFakeQueue(t))
		require.NoError(t, err, u)
	}
	_, err := New(good, nil)
	require.Error(t, err)
}

func TestTopics(t *testing.T) {
	require.Equal(t, "mrv/v1/plant/gw-1/kiln1/blocks", Topic("plant", "gw-1", "kiln1"))
	require.Equal(t, "mrv/v1/plant/gw-1/status", StatusTopic("plant", "gw-1"))
}

func TestRunTwice(t *testing.T) {
	p, err := New(Config{URL: "mqtt://127.0.0.1:1", ClientID: "x", Site: "a", Gateway: "b"}, newFakeQueue(t))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, p.Run(ctx))
	require.Error(t, p.Run(ctx))
}
