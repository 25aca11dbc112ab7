//go:build integration

package agent

// W3-like benchmarks (docs/benchmarks.md): the whole pipeline — a synthetic in-process source,
// sealing, fsync'd bbolt commits, QoS 1 publishes acknowledged by a real Mosquitto on
// loopback. Each runs a fixed scenario once; run them with
//
//	go test -tags integration -run '^$' -bench BenchmarkW3 -benchtime 1x -timeout 20m ./agent/
//
// (make bench-w3). MRV_BENCH_OUTAGE sets the outage of BenchmarkW3OutageRSS (default 2m).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mrv-agent/mrv-agent/collector"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/sim"
)

// synthSource offers rate readings per second of 50 float32 tags, in polls of one poll
// interval each, with the raw register words (as a Modbus source would).
type synthSource struct {
	name     string
	interval time.Duration
	rate     atomic.Int64
	seq      uint64
	tags     []string
	last     int64   // Unix ns of the last poll
	owed     float64 // readings due, not yet produced
}

func newSynth(name string, interval time.Duration, rate int64) *synthSource {
	s := &synthSource{name: name, interval: interval}
	s.rate.Store(rate)
	for i := range 50 {
		s.tags = append(s.tags, fmt.Sprintf("meter.v%02d", i))
	}
	return s
}

func (s *synthSource) Name() string { return s.name }
func (s *synthSource) Close() error { return nil }

func (s *synthSource) Read(context.Context) ([]reading.Reading, error) {
	// The readings due since the last poll, so the offered rate holds whatever the poll
	// schedule does.
	now := time.Now().UnixNano()
	if s.last == 0 {
		s.last = now - int64(s.interval)
	}
	s.owed += float64(s.rate.Load()) * float64(now-s.last) / float64(time.Second)
	s.last = now
	n := int(s.owed)
	s.owed -= float64(n)
	out := make([]reading.Reading, n)
	for i := range out {
		s.seq++
		v, _ := reading.FromFloat32(float32(s.seq%10000) * 0.25)
		out[i] = reading.Reading{Tag: s.tags[i%len(s.tags)], Value: v, HasValue: true, Unit: "kW",
			Time: now, TimeSource: reading.TimeGateway, Raw: []byte{byte(s.seq >> 24), byte(s.seq >> 16), byte(s.seq >> 8), byte(s.seq)}}
	}
	return out, nil
}

// benchBed is an agent fed by a synthetic source, publishing to a Mosquitto that the
// benchmark starts when it wants the uplink up.
type benchBed struct {
	dir  string
	mq   *sim.Mosquitto
	src  *synthSource
	a    *Agent
	stop context.CancelFunc
	done chan error
}

func newBenchBed(b *testing.B, rate int64, brokerUp bool) *benchBed {
	b.Helper()
	bb := &benchBed{dir: b.TempDir(), done: make(chan error, 1)}
	mq, err := sim.StartMosquitto(bb.dir, sim.MosquittoOptions{})
	if errors.Is(err, sim.ErrNoMosquitto) && os.Getenv("CI") != "true" {
		b.Skip("mosquitto is not installed")
	}
	if err != nil {
		b.Fatal(err)
	}
	bb.mq = mq
	b.Cleanup(func() { _ = mq.Kill() })
	if !brokerUp {
		if err := mq.Stop(); err != nil {
			b.Fatal(err)
		}
	}
	key, err := seal.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	keyFile := filepath.Join(bb.dir, "gateway.key")
	if err := seal.WriteKey(keyFile, key); err != nil {
		b.Fatal(err)
	}
	text := fmt.Sprintf(`gateway: {site: bench, id: gw1}
key_file: %q
buffer: {path: %q, max_bytes: 4GiB}
mqtt: {url: %q, client_id: mrv-bench}
log: {level: warn}
sources:
  - name: meters
    kind: modbus
    interval: 20ms
    timeout: 15ms
    modbus: {url: "tcp://127.0.0.1:1"}
    tags:
%s`, keyFile, filepath.Join(bb.dir, "buffer.db"), mq.URL(), sim.TagsYAML(sim.KilnPoints(), "      "))
	path := filepath.Join(bb.dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	bb.src = newSynth("meters", 20*time.Millisecond, rate)
	bb.a, err = New(cfg, Options{Version: "bench", NoStatus: true, Sources: map[string]collector.Source{"meters": bb.src}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bb.stop = cancel
	go func() { bb.done <- bb.a.Run(ctx) }()
	b.Cleanup(func() {
		if bb.stop != nil {
			bb.stop()
			<-bb.done
		}
	})
	return bb
}

// published is the number of records (all streams) acknowledged by the broker.
func (bb *benchBed) published() uint64 {
	var n uint64
	for _, h := range bb.a.store.Heads() {
		n += h.Published
	}
	return n
}

// sealedRecords is the number of records (all streams) committed to the buffer.
func (bb *benchBed) sealedRecords() uint64 {
	var n uint64
	for _, h := range bb.a.store.Heads() {
		n += h.NextSeq
	}
	return n
}

// proc is a snapshot of this process's counters.
type proc struct {
	at         time.Time
	cpu        time.Duration // utime + stime
	writeBytes int64         // /proc/self/io write_bytes: what reached the block layer
	rss, hwm   int64         // VmRSS, VmHWM in bytes
	anon       int64         // RssAnon in bytes: heap and stacks, without bbolt's mmap pages
}

func sample() proc {
	p := proc{at: time.Now()}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		p.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	p.writeBytes = procField("/proc/self/io", "write_bytes:", 1)
	p.rss = procField("/proc/self/status", "VmRSS:", 1024)
	p.hwm = procField("/proc/self/status", "VmHWM:", 1024)
	p.anon = procField("/proc/self/status", "RssAnon:", 1024)
	return p
}

func procField(path, key string, unit int64) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == key {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			return n * unit
		}
	}
	return -1
}

func (bb *benchBed) fileBytes() int64 {
	fi, err := os.Stat(filepath.Join(bb.dir, "buffer.db"))
	if err != nil {
		return -1
	}
	return fi.Size()
}

func waitFor(b *testing.B, within time.Duration, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("condition not met within %s", within)
		}
		<-time.After(50 * time.Millisecond)
	}
}

// BenchmarkW3Ingest offers 120,000 readings/s and measures, over a 15 s window after a 5 s
// warm-up, the rate committed (sealed + fsync'd) and the rate acknowledged by Mosquitto,
// the CPU, the bytes written and the bytes on disk per reading.
func BenchmarkW3Ingest(b *testing.B) {
	rate := int64(120_000)
	if s := os.Getenv("MRV_BENCH_RATE"); s != "" {
		rate, _ = strconv.ParseInt(s, 10, 64)
	}
	for b.Loop() {
		bb := newBenchBed(b, rate, true)
		<-time.After(5 * time.Second)
		p0, c0, s0 := sample(), bb.published(), bb.a.Stats().Readings
		<-time.After(15 * time.Second)
		p1, c1, s1 := sample(), bb.published(), bb.a.Stats().Readings
		secs := p1.at.Sub(p0.at).Seconds()
		committed := float64(s1 - s0)
		b.ReportMetric(float64(rate), "offered/s")
		b.ReportMetric(committed/secs, "committed-readings/s")
		b.ReportMetric(float64(c1-c0)/secs, "puback-records/s")
		b.ReportMetric((p1.cpu-p0.cpu).Seconds()/committed*10000, "cpu-s/10k-readings")
		b.ReportMetric(float64(p1.writeBytes-p0.writeBytes)/committed, "written-bytes/reading")
		b.ReportMetric(float64(bb.fileBytes())/float64(bb.sealedRecords()), "file-bytes/record")
		b.ReportMetric(float64(bb.a.store.Stats().LiveBytes)/float64(bb.sealedRecords()), "live-bytes/record")
		b.ReportMetric(float64(p1.hwm)/(1<<20), "VmHWM-MiB")
		b.ReportMetric(float64(bb.a.Stats().Unpublished), "unpublished-blocks-at-end")
	}
}

// BenchmarkW3Drain builds a backlog of at least 1,000,000 readings with the broker down
// (ingesting at 150,000/s), then lowers ingest to 10,000/s, starts Mosquitto and measures
// how fast the backlog drains from the moment the uplink connects.
func BenchmarkW3Drain(b *testing.B) {
	for b.Loop() {
		bb := newBenchBed(b, 150_000, false)
		waitFor(b, 60*time.Second, func() bool { return bb.a.Stats().Readings >= 1_000_000 })
		bb.src.rate.Store(10_000)
		<-time.After(time.Second) // the last fast polls are committed
		if err := bb.mq.Start(); err != nil {
			b.Fatal(err)
		}
		waitFor(b, 60*time.Second, func() bool { return bb.a.Stats().Connected })
		p0 := sample()
		backlog := bb.sealedRecords() - bb.published()
		target := bb.sealedRecords()
		waitFor(b, 120*time.Second, func() bool { return bb.published() >= target })
		p1 := sample()
		secs := p1.at.Sub(p0.at).Seconds()
		b.ReportMetric(float64(backlog), "backlog-records")
		b.ReportMetric(float64(backlog)/secs, "drained-records/s")
		b.ReportMetric(secs, "drain-s")
		b.ReportMetric((p1.cpu - p0.cpu).Seconds(), "cpu-s-during-drain")
		b.ReportMetric(float64(p1.hwm)/(1<<20), "VmHWM-MiB")
		b.ReportMetric(float64(bb.fileBytes())/(1<<20), "file-MiB")
	}
}

// BenchmarkW3OutageRSS ingests W1's 3,000 readings/s with the broker down for
// MRV_BENCH_OUTAGE (default 2m) and samples the resident set every 10 s: the backlog
// lives on disk, so RSS must stay flat while the buffer file grows.
func BenchmarkW3OutageRSS(b *testing.B) {
	outage := 2 * time.Minute
	if s := os.Getenv("MRV_BENCH_OUTAGE"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			outage = d
		}
	}
	for b.Loop() {
		bb := newBenchBed(b, 3_000, false)
		start := time.Now()
		var first, last, peak, firstAnon, lastAnon, peakAnon int64
		var series []string
		for time.Since(start) < outage {
			<-time.After(10 * time.Second)
			p := sample()
			if first == 0 && time.Since(start) >= 30*time.Second {
				first, firstAnon = p.rss, p.anon
			}
			last, lastAnon = p.rss, p.anon
			peak, peakAnon = max(peak, p.rss), max(peakAnon, p.anon)
			series = append(series, fmt.Sprintf("%.0fs:%.1f/%.1f/%.1f", time.Since(start).Seconds(),
				float64(p.rss)/(1<<20), float64(p.anon)/(1<<20), float64(bb.fileBytes())/(1<<20)))
		}
		b.Logf("time:RSS/RssAnon/file MiB: %s", strings.Join(series, " "))
		b.ReportMetric(outage.Seconds(), "outage-s")
		b.ReportMetric(float64(bb.a.Stats().Readings), "readings-buffered")
		b.ReportMetric(float64(first)/(1<<20), "RSS-at-30s-MiB")
		b.ReportMetric(float64(last)/(1<<20), "RSS-at-end-MiB")
		b.ReportMetric(float64(peak)/(1<<20), "RSS-peak-MiB")
		b.ReportMetric(float64(firstAnon)/(1<<20), "RssAnon-at-30s-MiB")
		b.ReportMetric(float64(lastAnon)/(1<<20), "RssAnon-at-end-MiB")
		b.ReportMetric(float64(peakAnon)/(1<<20), "RssAnon-peak-MiB")
		b.ReportMetric(float64(sample().hwm)/(1<<20), "VmHWM-MiB")
		b.ReportMetric(float64(bb.fileBytes())/(1<<20), "file-MiB")
	}
}
