package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/hack/bench/internal/bank"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/sim"
)

const site = "bench"

// bed is one agent configuration: key, buffer, broker, status port, sources.
type bed struct {
	dir, gw, cfg, statusAddr string
	key                      *seal.Key
}

func newBed(dir, gw, brokerURL, maxAge string, sources string) (*bed, error) {
	b := &bed{dir: dir, gw: gw}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	k, err := seal.GenerateKey()
	if err != nil {
		return nil, err
	}
	b.key = k
	keyFile := filepath.Join(dir, "gw.key")
	if err := seal.WriteKey(keyFile, k); err != nil {
		return nil, err
	}
	port, err := sim.FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	b.statusAddr = fmt.Sprintf("127.0.0.1:%d", port)
	text := fmt.Sprintf(`gateway: {site: %s, id: %s}
key_file: %q
buffer: {path: %q}
blocks: {max_records: 500, max_age: %s, heartbeat: 30s}
mqtt: {url: %q, client_id: mrv-%s}
status: {listen: %q}
log: {level: warn, format: text}
sources:
%s`, site, gw, keyFile, filepath.Join(dir, "buffer.db"), maxAge, brokerURL, gw, b.statusAddr, sources)
	b.cfg = filepath.Join(dir, "config.yaml")
	return b, os.WriteFile(b.cfg, []byte(text), 0o600)
}

func (b *bed) start(o options, profile string) (*agentProc, error) {
	var extra []string
	if o.profile != "" && profile != "" {
		extra = []string{"-cpuprofile", filepath.Join(o.profile, profile+".cpu.pprof"),
			"-memprofile", filepath.Join(o.profile, profile+".allocs.pprof")}
	}
	return startAgent(o.agent, b.cfg, b.statusAddr, extra...)
}

// catchUp waits until the counter holds every seq below the agent's heads (asking for
// resends of what is missing) or within passes; it returns what is still missing.
func catchUp(a *agentProc, c *counter, gw string, within time.Duration) (uint64, error) {
	deadline := time.Now().Add(within)
	for {
		if err := a.wait(time.Second); err != nil {
			return 0, err
		}
		st, err := a.getStatus()
		if err != nil {
			continue
		}
		heads, err := st.heads()
		if err != nil {
			return 0, err
		}
		unpub := 0
		for _, s := range st.Streams {
			unpub += s.Unpublished
		}
		n, _ := c.missing(site, gw, heads)
		if (n == 0 && unpub == 0) || time.Now().After(deadline) {
			return n, nil
		}
	}
}

func runW1(o options, run int, t *table) error {
	dir, err := os.MkdirTemp("", "mrv-bench-w1-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mq, err := mosquitto(dir)
	if err != nil {
		return err
	}
	defer func() { _ = mq.Kill() }()

	// The simulators: one Modbus TCP server (unit ids 1-4 × 50 float32) and one OPC UA
	// server with 100 Double variables, all changing every 100 ms.
	mb, mbAddr, err := bank.Start(bank.Bank{N: 50, Step: 100 * time.Millisecond}, 16)
	if err != nil {
		return err
	}
	defer func() { _ = mb.Stop() }()
	ua, err := sim.StartOPCUA("127.0.0.1", sim.OPCUAOptions{Tick: 100 * time.Millisecond, Variables: 100})
	if err != nil {
		return err
	}
	defer func() { _ = ua.Close() }()
	sources := modbusSourceYAML("plc", mbAddr, 100*time.Millisecond, []int{1, 2, 3, 4}, 50) +
		opcuaSourceYAML("ua", ua.Endpoint(), 100*time.Millisecond, 100)
	const rate = 3000.0

	// Start to first published block, with max_age 100 ms (a fresh buffer).
	{
		gw := fmt.Sprintf("start%d", run)
		b, err := newBed(filepath.Join(dir, gw), gw, mq.URL(), "100ms", sources)
		if err != nil {
			return err
		}
		c, err := startCounter(mq.URL(), site, gw, b.key)
		if err != nil {
			return err
		}
		a, err := b.start(o, "")
		if err != nil {
			return err
		}
		deadline := time.Now().Add(20 * time.Second)
		for c.firstRead.Load() == 0 && time.Now().Before(deadline) {
			if err := a.wait(10 * time.Millisecond); err != nil {
				return err
			}
		}
		a.stop()
		if c.firstRead.Load() == 0 {
			return fmt.Errorf("no block with a reading within 20s\n%s", a.log.String())
		}
		t.add("W1", "start to first published block (any record)", "s", "", float64(c.firstBlock.Load()-a.started.UnixNano())/1e9)
		t.add("W1", "start to first published block holding readings (max_age 100 ms)", "s", "≤ 0.2",
			float64(c.firstRead.Load()-a.started.UnixNano())/1e9)
		// A restart of the same gateway: its retained status is on the broker now.
		c.firstBlock.Store(0)
		c.firstRead.Store(0)
		if a, err = b.start(o, ""); err != nil {
			return err
		}
		deadline = time.Now().Add(20 * time.Second)
		for c.firstRead.Load() == 0 && time.Now().Before(deadline) {
			if err := a.wait(10 * time.Millisecond); err != nil {
				return err
			}
		}
		a.stop()
		c.stop()
		if c.firstRead.Load() == 0 {
			return fmt.Errorf("no block with a reading within 20s of a restart\n%s", a.log.String())
		}
		t.add("W1", "restart to first published block holding readings (retained status present)", "s", "",
			float64(c.firstRead.Load()-a.started.UnixNano())/1e9)
	}

	gw := fmt.Sprintf("w1r%d", run)
	b, err := newBed(filepath.Join(dir, gw), gw, mq.URL(), "1s", sources)
	if err != nil {
		return err
	}
	c, err := startCounter(mq.URL(), site, gw, b.key)
	if err != nil {
		return err
	}
	defer c.stop()
	a, err := b.start(o, fmt.Sprintf("w1-run%d", run))
	if err != nil {
		return err
	}
	defer func() { a.stop() }()
	if _, err := a.waitStatus(10 * time.Second); err != nil {
		return err
	}
	// Steady window: 10 s .. duration-5 s after the agent started.
	if err := a.wait(time.Until(a.started.Add(10 * time.Second))); err != nil {
		return err
	}
	m0, err := takeMark(a, c)
	if err != nil {
		return err
	}
	if err := a.wait(time.Until(a.started.Add(o.duration - 5*time.Second))); err != nil {
		return err
	}
	m1, err := takeMark(a, c)
	if err != nil {
		return err
	}
	n, secs, err := addWindow(t, "W1", "3,000", 3000, m0, m1, a)
	if err != nil {
		return err
	}
	addOthersCPU(t, "W1", m0, m1, n)
	p0, p1 := m0.p, m1.p
	wb, eb := float64(p1.writeBytes-p0.writeBytes), float64(m1.e-m0.e)
	t.add("W1", "agent bytes written to disk per hour", "MB/h", "", wb/secs*3600/1e6)
	t.add("W1", "envelope bytes sealed per hour", "MB/h", "", eb/secs*3600/1e6)
	t.add("W1", "disk writes ÷ envelope bytes", "×", "≤ 3", wb/eb)
	t.add("W1", "agent peak RSS (VmHWM) after the window", "MiB", "≤ 24", float64(p1.hwm)/(1<<20))
	t.add("W1", "agent RssAnon at the end of the window", "MiB", "", float64(p1.anon)/(1<<20))
	if err := a.wait(time.Until(a.started.Add(o.duration))); err != nil {
		return err
	}

	// Broker outage: Mosquitto stopped for o.outage, then started again.
	pre, _ := sampleProc(a.pid())
	dup0 := c.dupReadings.Load()
	if err := mq.Stop(); err != nil {
		return err
	}
	peakRSS, peakAnon := pre.rss, pre.anon
	for end := time.Now().Add(o.outage); time.Now().Before(end); {
		if err := a.wait(time.Second); err != nil {
			return err
		}
		if p, err := sampleProc(a.pid()); err == nil {
			peakRSS, peakAnon = max(peakRSS, p.rss), max(peakAnon, p.anon)
		}
	}
	if err := mq.Start(); err != nil {
		return err
	}
	lost, err := catchUp(a, c, gw, 90*time.Second)
	if err != nil {
		return err
	}
	post, _ := sampleProc(a.pid())
	t.add("W1", fmt.Sprintf("VmRSS before → peak during the %s outage", o.outage), "MiB", "flat",
		float64(peakRSS-pre.rss)/(1<<20))
	t.rows[len(t.rows)-1].note = "growth"
	t.add("W1", "VmRSS before the outage", "MiB", "", float64(pre.rss)/(1<<20))
	t.add("W1", "RssAnon before → peak during the outage (growth)", "MiB", "flat", float64(peakAnon-pre.anon)/(1<<20))
	t.add("W1", "peak RSS (VmHWM) after the outage", "MiB", "≤ 24", float64(post.hwm)/(1<<20))
	t.add("W1", "readings lost across the outage", "", "0", float64(lost))
	t.add("W1", "readings duplicated across the outage", "", "", float64(c.dupReadings.Load()-dup0))

	// Crash: SIGKILL half-way through a second outage, restart at once, broker back at the end.
	gaps0 := len(c.gapTimes())
	if err := mq.Stop(); err != nil {
		return err
	}
	if err := a.wait(o.outage / 2); err != nil {
		return err
	}
	a.kill()
	a2, err := b.start(o, "")
	if err != nil {
		return err
	}
	a = a2
	if err := a.wait(o.outage - o.outage/2); err != nil {
		return err
	}
	if err := mq.Start(); err != nil {
		return err
	}
	if _, err := a.waitStatus(10 * time.Second); err != nil {
		return err
	}
	lost, err = catchUp(a, c, gw, 90*time.Second)
	if err != nil {
		return err
	}
	// Every stream declares the same agent-down interval: the span is the longest one.
	var span time.Duration
	for _, g := range c.gapTimes()[gaps0:] {
		if g.Reason == reading.ReasonAgentDown {
			span = max(span, time.Duration(g.To-g.From))
		}
	}
	t.add("W1", "readings lost after a SIGKILL during the outage", "", "0", float64(lost))
	t.add("W1", "agent-down gap-time after the restart (span)", "s", "", span.Seconds())
	t.add("W1", "readings not sealed, covered by that gap-time (span × 3,000/s)", "", "", span.Seconds()*rate)
	a.stop()
	sum := c.stop()
	if sum.Failures > 0 {
		var f []string
		for _, x := range sum.Findings {
			if x.Failure() {
				f = append(f, x.String())
			}
		}
		return fmt.Errorf("verifier failures: %s", strings.Join(f, "; "))
	}
	t.add("W1", "verifier failures", "", "0", float64(sum.Failures))
	return nil
}
