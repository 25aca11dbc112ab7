// Package agent wires the pipeline of one gateway: sources -> records -> seal -> buffer ->
// uplink (ARCHITECTURE.md). It is the only package that names the concrete types of every
// stage; cmd/mrv-agent parses flags and calls it, and the demo and end-to-end tests run it
// in-process.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mrv-agent/mrv-agent/buffer"
	"github.com/mrv-agent/mrv-agent/collector"
	"github.com/mrv-agent/mrv-agent/collector/modbus"
	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/uplink"
)

// AgentStream is the reserved name of the lifecycle stream.
const AgentStream = "agent"

// Meta keys of the buffer.
const (
	metaAlive      = "alive"       // Unix ns of the last commit: the agent was alive then
	metaConfigHash = "config-hash" // SHA-256 of the config in force at the last commit
)

// Options are the parts of an agent that do not come from the config file.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Now is the wall clock (tests inject one); default time.Now.
	Now func() time.Time
	// Sources, by source name, replace the source the config's kind would build (benchmarks
	// and tests feed synthetic readings through the real pipeline this way).
	Sources map[string]collector.Source

	// NoStatus disables the status server; StatusListen overrides status.listen (tests and
	// the demo use 127.0.0.1:0; StatusAddr tells the bound address).
	NoStatus     bool
	StatusListen string
	// StallAfter is how long the pipeline may go without a commit before /healthz fails
	// and the systemd watchdog is no longer petted; default 3 × blocks.max_age + 10 s.
	StallAfter time.Duration
	// BacklogBudget is how old unpublished blocks may get while the uplink is down before
	// /readyz fails; default 5 min.
	BacklogBudget time.Duration
}

// Agent is one running gateway pipeline. Build it with New, run it once with Run.
type Agent struct {
	cfg    *config.Config
	log    *slog.Logger
	now    func() time.Time
	ver    string
	key    *seal.Key
	store  *buffer.Store
	sealer *seal.Sealer
	pub    *uplink.Publisher

	sources []collector.Source
	pollers []*collector.Poller

	// Owned by the pipeline goroutine once Run starts.
	streams map[string]*stream
	order   []string // stream names: agent first, then sources in config order

	lastCommit time.Time
	nextKey    *seal.Key                // a rotation in progress: sealed into every stream at the next tick
	nextKeyErr string                   // the last error loading the next key, logged once
	keyNow     atomic.Pointer[seal.Key] // the key in force, for the uplink's birth messages
	clock      clockWatch

	prevHeads map[string]reading.StreamHead // from the agent's own retained status, for new logs' genesis

	resendReqs    chan []byte // from the uplink's subscription
	resendLimit   tokenBucket
	resendDropped atomic.Uint64

	readings  atomic.Uint64 // readings accepted into a block that committed
	sealed    atomic.Uint64 // blocks committed
	commitErr atomic.Uint64 // failed commits

	obs  *observer     // status server, watchdog and their counters (status.go)
	emis *emissionsRun // nil without emissions[] in the config
}

// stream is the pipeline's state of one stream.
type stream struct {
	seal.Stream
	created    int64
	pending    []reading.Record
	lastSealed time.Time
	interval   time.Duration // the source's poll interval (0 for the agent stream)
	down       bool
	downSince  time.Time
	lastTime   map[string]int64 // latest reading time per tag
	lost       pendingLoss      // readings dropped at the pending cap while commits failed
	gotData    bool             // a batch with readings arrived since the start
}

// New opens the key and the buffer, plans the sources and prepares every stream; it starts
// no goroutine. On error nothing is left open.
func New(cfg *config.Config, opts Options) (_ *Agent, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := &Agent{cfg: cfg, log: log, now: now, ver: opts.Version, streams: make(map[string]*stream),
		resendReqs: make(chan []byte, resendQueue), resendLimit: newTokenBucket(resendRate, resendBurst),
		obs: newObserver(cfg, opts)}

	a.key, err = seal.LoadKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	for _, sc := range cfg.Sources {
		if s, ok := opts.Sources[sc.Name]; ok {
			a.sources = append(a.sources, s)
			a.pollers = append(a.pollers, collector.NewPoller(s, sc.Interval.D(), sc.Timeout.D(), log))
			continue
		}
		switch sc.Kind {
		case "modbus":
			s, err := modbus.New(sc, log)
			if err != nil {
				a.closeSources()
				return nil, fmt.Errorf("source %s: %w", sc.Name, err)
			}
			a.sources = append(a.sources, s)
			a.pollers = append(a.pollers, collector.NewPoller(s, sc.Interval.D(), sc.Timeout.D(), log))
		case "opcua":
			s, err := opcua.New(sc, log, opcua.Options{Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID, Now: opts.Now})
			if err != nil {
				a.closeSources()
				return nil, fmt.Errorf("source %s: %w", sc.Name, err)
			}
			a.sources = append(a.sources, s)
			a.pollers = append(a.pollers, collector.NewPoller(s, sc.Interval.D(), sc.Timeout.D(), log))
		default:
			a.closeSources()
			return nil, fmt.Errorf("source %s: kind %q is not supported", sc.Name, sc.Kind)
		}
	}
	a.store, err = a.openBuffer()
	if err != nil {
		a.closeSources()
		return nil, err
	}
	defer func() {
		if err != nil {
			a.closeSources()
			a.store.Close()
		}
	}()
	if err := a.reconcileKey(); err != nil {
		return nil, err
	}
	ucfg := uplink.Config{
		URL:       cfg.MQTT.URL,
		ClientID:  cfg.MQTT.ClientID,
		Inflight:  cfg.MQTT.Inflight,
		DrainRate: cfg.MQTT.DrainRate,
		Site:      cfg.Gateway.Site,
		Gateway:   cfg.Gateway.ID,
		Logger:    log.With("component", "uplink"),
	}
	if err := a.uplinkSecurity(&ucfg); err != nil {
		return nil, err
	}
	if err := a.checkLineage(ucfg); err != nil {
		return nil, err
	}
	if len(cfg.Emissions) > 0 {
		snap, err := a.store.Meta(metaEmissions)
		if err != nil {
			return nil, err
		}
		if a.emis, err = newEmissionsRun(cfg, snap); err != nil {
			return nil, err
		}
	}
	a.keyNow.Store(a.key)
	a.sealer = seal.NewSealer(a.key, a.store.Epoch())
	if err := a.initStreams(); err != nil {
		return nil, err
	}
	ucfg.Birth = a.birth
	ucfg.DeathFunc = a.death
	ucfg.OnResend = a.onResend
	ucfg.OnPubAck = a.obs.latency.Observe
	a.pub, err = uplink.New(ucfg, queue{a.store})
	if err != nil {
		return nil, err
	}
	if err := a.startStatus(opts); err != nil {
		return nil, err
	}
	return a, nil
}

// initStreams continues every stream whose head the buffer holds and opens a new log for
// the others. After a restart, every continued stream gets a gap-time record for the time
// the agent was down.
func (a *Agent) initStreams() error {
	now := a.now()
	heads := a.store.Heads()
	names := []string{AgentStream}
	intervals := map[string]time.Duration{}
	for _, sc := range a.cfg.Sources {
		names = append(names, sc.Name)
		intervals[sc.Name] = sc.Interval.D()
	}
	for _, e := range a.cfg.Emissions {
		names = append(names, e.Name) // after the sources: their readings are sealed first
	}
	var alive int64
	if b, err := a.store.Meta(metaAlive); err == nil && len(b) == 8 {
		alive = int64(binary.BigEndian.Uint64(b))
	}
	reason := reading.ReasonNewLog
	if _, recovered := a.store.Recovered(); recovered {
		reason = reading.ReasonBufferLost
	}
	for _, name := range names {
		st := &stream{interval: intervals[name], lastSealed: now, lastTime: make(map[string]int64)}
		st.Name = name
		st.Origin = reading.Origin(a.cfg.Gateway.Site, a.cfg.Gateway.ID, name)
		if h, ok := heads[name]; ok {
			st.LogID, st.NextSeq, st.LastHash, st.created = h.LogID, h.NextSeq, h.LastHash, h.Created
			if alive > 0 && alive < now.UnixNano() {
				st.pending = append(st.pending, reading.Record{Kind: reading.KindGapTime, Time: now.UnixNano(),
					Body: &reading.GapTimeBody{From: alive, To: now.UnixNano(), Reason: reading.ReasonAgentDown}})
			}
		} else {
			if _, err := rand.Read(st.LogID[:]); err != nil {
				return err
			}
			st.created = now.UnixNano()
			g := &reading.GenesisBody{Reason: reason, Kid: slices.Clone(a.key.Kid[:])}
			if prev, ok := a.prevHeads[name]; ok && len(prev.LogID) == 16 {
				// The agent's own retained status names the log this one replaces.
				g.Reason = reading.ReasonBufferLost
				g.PrevLogID = slices.Clone(prev.LogID)
				if prev.NextSeq > 0 {
					last := prev.NextSeq - 1
					g.PrevLastSeq = &last
					g.PrevLastHash = slices.Clone(prev.LastHash)
				}
			}
			st.pending = append(st.pending, reading.Record{Kind: reading.KindGenesis, Time: now.UnixNano(), Body: g})
			a.log.Info("new log", "stream", name, "log_id", fmt.Sprintf("%x", st.LogID), "reason", reason)
		}
		a.streams[name] = st
		a.order = append(a.order, name)
	}
	if old, _ := a.store.Meta(metaConfigHash); string(old) != string(a.cfg.Hash[:]) {
		ag := a.streams[AgentStream]
		ag.pending = append(ag.pending, reading.Record{Kind: reading.KindConfig, Time: now.UnixNano(),
			Body: &reading.ConfigBody{Hash: slices.Clone(a.cfg.Hash[:])}})
	}
	return nil
}

// Run runs the pipeline until ctx is done, then shuts down in order: sources stop, the
// pipeline seals and commits what it holds, the uplink finishes its in-flight publishes
// and sends the death message, sources close, and the buffer closes last.
func (a *Agent) Run(ctx context.Context) error {
	defer a.store.Close()
	defer a.closeSources()

	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	upCtx, stopUplink := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUplink()

	batches := make(chan collector.Batch, 4*len(a.pollers)+4)
	var g errgroup.Group
	var polls errgroup.Group
	for _, p := range a.pollers {
		polls.Go(func() error { return p.Run(srcCtx, batches) })
	}
	g.Go(func() error {
		err := polls.Wait()
		close(batches)
		return err
	})
	g.Go(func() error {
		// The uplink outlives the pipeline so that the last blocks go out.
		defer stopUplink()
		err := a.pipeline(batches)
		if err != nil {
			stopSources()
		}
		return err
	})
	g.Go(func() error { return a.pub.Run(upCtx) })
	a.observe(&g, ctx, upCtx)
	return g.Wait()
}

func (a *Agent) closeSources() {
	for _, s := range a.sources {
		if err := s.Close(); err != nil {
			a.log.Warn("close source", "source", s.Name(), "err", err)
		}
	}
	a.sources = nil
}

// pipeline accepts batches until the channel closes, sealing and committing every
// blocks.max_age; after the channel closes it seals and commits what is left.
func (a *Agent) pipeline(batches <-chan collector.Batch) error {
	t := time.NewTicker(a.cfg.Blocks.MaxAge.D())
	defer t.Stop()
	// The first commit (genesis, restart gaps, config) happens at once.
	if err := a.tick(); err != nil {
		return err
	}
	for {
		select {
		case b, ok := <-batches:
			if !ok {
				return a.flush()
			}
			// A stream's first readings since the start are sealed at once rather than at
			// the next tick: a start shows live data within milliseconds of the first poll.
			if a.accept(b) {
				if err := a.tick(); err != nil {
					return err
				}
			}
		case p := <-a.resendReqs:
			a.handleResend(p, a.now())
		case <-t.C:
			if err := a.tick(); err != nil {
				return err
			}
		}
	}
}

// flush is the last tick at shutdown; a failing commit is retried a few times, since what
// it holds is lost otherwise (the next start declares it with its agent-down gap).
func (a *Agent) flush() error {
	var err error
	for range 3 {
		if err = a.tick(); err == nil && !a.hasPending() {
			return nil
		}
	}
	return err
}

func (a *Agent) hasPending() bool {
	for _, st := range a.streams {
		if len(st.pending) > 0 {
			return true
		}
	}
	return false
}

// accept turns a poll's readings into pending records of its stream and tracks the
// source's outages: when a source comes back after more than one interval down, a gap-time
// record (reason source-down) declares the time without data. It reports whether the batch
// holds the stream's first readings since the start.
func (a *Agent) accept(b collector.Batch) (first bool) {
	st, ok := a.streams[b.Source]
	if !ok {
		a.log.Error("batch from unknown source", "source", b.Source)
		return false
	}
	if len(b.Readings) > 0 && !st.gotData {
		st.gotData, first = true, true
	}
	switch {
	case b.Err != nil && !st.down:
		st.down, st.downSince = true, b.Start
	case b.Err == nil && st.down:
		st.down = false
		if b.Start.Sub(st.downSince) > st.interval {
			st.pending = append(st.pending, reading.Record{Kind: reading.KindGapTime, Time: b.Start.UnixNano(),
				Body: &reading.GapTimeBody{From: st.downSince.UnixNano(), To: b.Start.UnixNano(), Reason: reading.ReasonSourceDown}})
		}
	}
	for i := range b.Readings {
		r := &b.Readings[i]
		// A tag's time never goes backwards unflagged within a stream (a clock stepped back,
		// or a device that reset its clock).
		if last, ok := st.lastTime[r.Tag]; ok && r.Time < last {
			r.Quality.Flags |= reading.FlagClockBackwards
		} else {
			st.lastTime[r.Tag] = r.Time
		}
		st.pending = append(st.pending, r.Record())
	}
	if a.commitsStalled() {
		a.capPending(st)
	}
	return first
}

// tick seals every stream's pending records (and heartbeats where a stream was idle) into
// blocks and commits them in one buffer transaction. If the commit fails, the streams are
// rolled back and the records stay pending for the next tick: nothing is acknowledged
// that is not durable.
func (a *Agent) tick() error {
	now := a.now()
	type undo struct {
		st   *stream
		prev seal.Stream
		n    int
	}
	var (
		envs  []reading.Envelope
		undos []undo
		heads = make(map[string]buffer.Head)
	)
	a.declareLosses(now)
	a.checkClock(now)
	rotation := a.rotationRecord(now)
	maxRecords := a.cfg.Blocks.MaxRecords
	var (
		derived  map[string][]reading.Record
		emisSnap []byte
	)
	for _, name := range a.order {
		st := a.streams[name]
		if a.emis != nil && derived == nil && a.emis.streams[name] {
			// Every source stream is sealed by now, so every reading has its seq: close
			// the windows the watermark passed. The derived records are added per attempt,
			// like the calculator's state, which a failed commit rolls back.
			var err error
			if derived, emisSnap, err = a.emis.advance(now); err != nil {
				return err
			}
		}
		if len(st.pending) == 0 && rotation == nil && now.Sub(st.lastSealed) >= a.cfg.Blocks.Heartbeat.D() {
			st.pending = append(st.pending, reading.Record{Kind: reading.KindHeartbeat, Time: now.UnixNano(), Body: &reading.HeartbeatBody{}})
		}
		batch := st.pending
		if g := st.lost.record(now); g != nil {
			batch = append([]reading.Record{*g}, batch...) // per attempt, like the rotation
		}
		if d := derived[name]; len(d) > 0 {
			batch = append(batch[:len(batch):len(batch)], d...)
		}
		if rotation != nil {
			// The key-rotation record is the last record of the last block signed by the old
			// key, in every stream. It is added per attempt, so a failed commit never leaves
			// it in the middle of a later block.
			batch = append(batch[:len(batch):len(batch)], *rotation)
		}
		if len(batch) == 0 {
			continue
		}
		u := undo{st: st, prev: st.Stream, n: len(st.pending)}
		for off := 0; off < len(batch); off += maxRecords {
			env, err := a.sealer.Seal(&st.Stream, batch[off:min(off+maxRecords, len(batch))])
			if err != nil {
				// A record that cannot be encoded is a bug, not an input problem: stop.
				return fmt.Errorf("seal %s: %w", name, err)
			}
			envs = append(envs, env)
		}
		if a.emis != nil && !a.emis.streams[name] {
			a.emis.observe(st, u.prev.NextSeq, batch)
		}
		undos = append(undos, u)
		heads[name] = buffer.Head{LogID: st.LogID, NextSeq: st.NextSeq, LastHash: st.LastHash, Created: st.created}
	}
	if len(envs) == 0 && now.Sub(a.lastCommit) < time.Second {
		return nil
	}
	meta := map[string][]byte{metaAlive: binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())), metaConfigHash: a.cfg.Hash[:]}
	if rotation != nil {
		meta[metaKid] = slices.Clone(a.nextKey.Kid[:])
	}
	if emisSnap != nil {
		meta[metaEmissions] = emisSnap
	}
	if err := a.store.Commit(buffer.Tick{Blocks: envs, Heads: heads, Meta: meta}); err != nil {
		for _, u := range undos {
			u.st.Stream = u.prev
		}
		if a.emis != nil {
			if rerr := a.emis.rollback(); rerr != nil {
				return fmt.Errorf("roll back emissions after a failed commit: %w", rerr)
			}
		}
		a.commitErr.Add(1)
		if errors.Is(err, buffer.ErrClosed) || errors.Is(err, buffer.ErrInvalidTick) {
			return err
		}
		a.log.Error("commit failed; records kept for the next tick", "blocks", len(envs), "err", err)
		return nil
	}
	a.lastCommit = now
	if emisSnap != nil {
		a.emis.commit(emisSnap)
	}
	var n uint64
	for _, u := range undos {
		for _, r := range u.st.pending[:u.n] {
			if r.Kind == reading.KindReading {
				n++
				a.obs.countReading(u.st.Name, r)
			}
		}
		u.st.pending = trimPending(u.st.pending, u.n)
		u.st.lastSealed = now
		u.st.lost = pendingLoss{}
	}
	a.readings.Add(n)
	a.sealed.Add(uint64(len(envs)))
	a.committed(now, envs)
	if rotation != nil {
		a.finishRotation()
	}
	if len(envs) > 0 {
		a.pub.Wake()
	}
	return nil
}

// trimPending drops the first n (sealed) records of pending, keeping its array unless it
// has grown far beyond a tick's worth: a backlog of pending records (a slow first commit,
// commits failing for a while) must not keep its high-water array for the agent's life.
func trimPending(pending []reading.Record, n int) []reading.Record {
	rest := pending[n:]
	if c := cap(pending); c > 1024 && c > 4*max(n, len(rest)) {
		return append(make([]reading.Record, 0, 2*max(n, len(rest))), rest...)
	}
	return append(pending[:0], rest...)
}

// declareLosses seals a gap-seq record for every range the buffer had to drop (its cap was
// reached with unpublished blocks) or quarantine (a stored value failed its checksum), so
// no loss is ever silent. The buffer keeps reporting a range until a commit succeeds after
// it was taken, so a failed commit loses no declaration.
func (a *Agent) declareLosses(now time.Time) {
	add := func(stream string, first, last uint64, hash [32]byte, reason string) {
		st, ok := a.streams[stream]
		if !ok {
			a.log.Warn("loss in a stream this config does not have", "stream", stream, "first", first, "last", last, "reason", reason)
			return
		}
		a.log.Warn("declaring lost blocks", "stream", stream, "first", first, "last", last, "reason", reason)
		st.pending = append(st.pending, reading.Record{Kind: reading.KindGapSeq, Time: now.UnixNano(),
			Body: &reading.GapSeqBody{First: first, Last: last, Reason: reason, LastHash: slices.Clone(hash[:])}})
	}
	for _, d := range a.store.TakeDropped() {
		add(d.Stream, d.FirstSeq, d.LastSeq, d.LastHash, reading.ReasonBufferFull)
	}
	for _, q := range a.store.TakeQuarantined() {
		add(q.Stream, q.FirstSeq, q.LastSeq, q.LastHash, reading.ReasonQuarantined)
	}
}

// Stats is a snapshot of the agent's counters.
type Stats struct {
	Readings      uint64 // readings in committed blocks
	Blocks        uint64 // blocks committed
	Published     uint64 // blocks acknowledged by the broker
	Unpublished   int    // blocks stored and not yet acknowledged
	FailedCommits uint64
	Connected     bool
}

// Stats returns the current counters; safe for concurrent use.
func (a *Agent) Stats() Stats {
	us := a.pub.Stats()
	bs := a.store.Stats()
	s := Stats{Readings: a.readings.Load(), Blocks: a.sealed.Load(), Published: us.Published,
		FailedCommits: a.commitErr.Load(), Connected: us.Connected}
	for _, st := range bs.Streams {
		s.Unpublished += st.Unpublished
	}
	return s
}
