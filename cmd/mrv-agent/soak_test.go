//go:build soak

package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/sim"
	"github.com/mrv-agent/mrv-agent/status"
	"github.com/mrv-agent/mrv-agent/verify"
)

// The soak (make soak; hack/soak.sh): SOAK_DURATION (default 90s, the CI pass; make soak
// runs 10m) of the agent as a subprocess polling a kiln and a pot line (Modbus, behind fault
// relays) and a kiln over OPC UA (behind a relay), publishing to a real Mosquitto with
// persistence, while random faults are injected every few seconds: slow replies, exceptions,
// busy devices, dropped connections, OPC UA server restarts, Mosquitto stops and SIGKILLs,
// and, in the first 40 %, agent SIGKILLs and restarts. The last 60 % is one agent process:
// it goes through a Mosquitto outage long enough to reach the buffer cap (max_bytes 1MiB)
// and is sampled every 3 s (RSS, goroutines and open fds from its /metrics, checked against
// /proc). At the end a verifier that saw everything, asking for resends of what it missed,
// reports no integrity failure and no undeclared gap, and the samples stay flat.
const (
	soakSite     = "soak"
	soakGateway  = "gw1"
	soakTopic    = "mrv/v1/" + soakSite + "/" + soakGateway + "/+/blocks"
	sampleEvery  = 3 * time.Second
	outageMaxCap = 45 * time.Second
)

func soakDuration(t *testing.T) time.Duration {
	d := 90 * time.Second
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		var err error
		d, err = time.ParseDuration(s)
		require.NoError(t, err, "SOAK_DURATION")
	}
	require.GreaterOrEqual(t, d, 60*time.Second, "SOAK_DURATION: at least 60s")
	return d
}

// soakSample is one look at the agent process.
type soakSample struct {
	at                 time.Duration // since the process started
	rss, goroutines    float64       // /metrics
	fds                float64       // /metrics process_open_fds
	procFDs, procRSSkB int           // /proc/PID, the cross-check
}

// seqSet tracks the seqs a verifier accepted for one log, and the ranges gap-seq records declared.
type seqSet struct {
	bits     []uint64
	max      uint64
	any      bool
	declared [][2]uint64
}

func (s *seqSet) add(seq uint64) {
	for uint64(len(s.bits))*64 <= seq {
		s.bits = append(s.bits, 0)
	}
	s.bits[seq/64] |= 1 << (seq % 64)
	if !s.any || seq > s.max {
		s.max, s.any = seq, true
	}
}

func (s *seqSet) has(seq uint64) bool {
	if uint64(len(s.bits))*64 <= seq {
		return false
	}
	if s.bits[seq/64]&(1<<(seq%64)) != 0 {
		return true
	}
	for _, r := range s.declared {
		if seq >= r[0] && seq <= r[1] {
			return true
		}
	}
	return false
}

// missing returns the ranges below max that were neither received nor declared.
func (s *seqSet) missing() [][2]uint64 {
	var out [][2]uint64
	for q := uint64(0); s.any && q < s.max; q++ {
		if s.has(q) {
			continue
		}
		if n := len(out); n > 0 && out[n-1][1] == q-1 {
			out[n-1][1] = q
		} else {
			out = append(out, [2]uint64{q, q})
		}
	}
	return out
}

type soakLog struct {
	origin string
	id     [16]byte
}

type soakVerifier struct {
	*verify.Verifier
	outbox chan verify.Outgoing
	cancel context.CancelFunc
	done   chan error

	mu         sync.Mutex
	logs       map[soakLog]*seqSet
	gapRecords map[string]int // signed gap records received, by kind and reason
}

func (v *soakVerifier) onRecord(r verify.RecordOut) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := soakLog{r.Origin, r.LogID}
	s := v.logs[k]
	if s == nil {
		s = &seqSet{}
		v.logs[k] = s
	}
	s.add(r.Seq)
	switch g := r.Record.Body.(type) {
	case *reading.GapSeqBody:
		s.declared = append(s.declared, [2]uint64{g.First, g.Last})
		v.gapRecords["gap-seq "+g.Reason]++
	case *reading.GapTimeBody:
		v.gapRecords["gap-time "+g.Reason]++
	}
}

// caughtUp reports whether the verifier holds every seq of the named logs up to next-1 and
// re-asks (as the verifier would) for what is missing.
func (v *soakVerifier) caughtUp(t *testing.T, heads map[soakLog]uint64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	ok := true
	for k, next := range heads {
		s := v.logs[k]
		if s == nil || next == 0 || !s.has(next-1) {
			ok = false
		}
		if s == nil {
			continue
		}
		for _, r := range s.missing() {
			ok = false
			stream := k.origin[strings.LastIndexByte(k.origin, '/')+1:]
			payload, err := reading.EncodeResendRequest(&reading.ResendRequest{Stream: stream, LogID: k.id[:], First: r[0], Last: r[1]})
			require.NoError(t, err)
			select {
			case v.outbox <- verify.Outgoing{Topic: reading.ResendTopic(soakSite, soakGateway), Payload: payload}:
			default:
			}
		}
	}
	return ok
}

func startSoakVerifier(t *testing.T, brokerURL string, pub ed25519.PublicKey) *soakVerifier {
	v := &soakVerifier{outbox: make(chan verify.Outgoing, 1024), done: make(chan error, 1), logs: map[soakLog]*seqSet{}, gapRecords: map[string]int{}}
	var err error
	v.Verifier, err = verify.New(verify.Options{Keys: []ed25519.PublicKey{pub}, ReorderWindow: 4096, ReorderTimeout: 3 * time.Second,
		ResendRetry: 10 * time.Second, OnRecord: v.onRecord,
		Resend: func(topic string, payload []byte) {
			select {
			case v.outbox <- verify.Outgoing{Topic: topic, Payload: payload}:
			default:
			}
		}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		v.done <- verify.Subscribe(ctx, verify.SubscribeConfig{Broker: brokerURL, Topic: soakTopic, ClientID: "soak-verifier",
			Ready: func() { once.Do(func() { close(ready) }) }, Outbox: v.outbox}, v.Add)
	}()
	go func() {
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tk.C:
				v.Tick(now)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
		t.Fatal("verifier did not subscribe within 15s")
	}
	return v
}

func (v *soakVerifier) stop(t *testing.T) verify.Summary {
	if v.cancel == nil {
		return verify.Summary{}
	}
	v.cancel()
	v.cancel = nil
	require.NoError(t, <-v.done)
	s := v.Finish()
	require.NoError(t, v.Close())
	return s
}

// soakAgent is the agent subprocess.
type soakAgent struct {
	cmd     *exec.Cmd
	started time.Time
}

func startSoakAgent(t *testing.T, cfg string, log *os.File) *soakAgent {
	cmd := exec.Command(os.Args[0], "run", "-c", cfg)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	return &soakAgent{cmd: cmd, started: time.Now()}
}

func (a *soakAgent) signal(sig syscall.Signal) {
	if a.cmd.ProcessState != nil {
		return
	}
	_ = a.cmd.Process.Signal(sig)
	_ = a.cmd.Wait()
}

var httpClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getStatus(base string) (*status.Report, error) {
	resp, err := httpClient.Get(base + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r status.Report
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

func metrics(base string) (map[string]float64, error) {
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

func sample(base string, a *soakAgent) (soakSample, error) {
	m, err := metrics(base)
	if err != nil {
		return soakSample{}, err
	}
	s := soakSample{at: time.Since(a.started), rss: m["process_resident_memory_bytes"], goroutines: m["go_goroutines"], fds: m["process_open_fds"]}
	pid := a.cmd.Process.Pid
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.procFDs = len(ents)
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				s.procRSSkB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
	}
	if s.goroutines == 0 || s.rss == 0 {
		return s, errors.New("metrics without go_goroutines or process_resident_memory_bytes")
	}
	return s, nil
}

// opcuaEnv makes TestSoakOPCUAServer serve the kiln over OPC UA, advertising the relay
// address it names, and print "ADDR host:port" on stdout; the soak kills it to restart it.
const opcuaEnv = "MRV_SOAK_OPCUA_ADVERTISE"

// TestSoakOPCUAServer is the soak's OPC UA server subprocess; it does nothing when run directly.
func TestSoakOPCUAServer(t *testing.T) {
	adv := os.Getenv(opcuaEnv)
	if adv == "" {
		t.Skip("the OPC UA server subprocess of TestSoak")
	}
	srv, err := sim.StartOPCUA("127.0.0.1", sim.OPCUAOptions{Tick: 200 * time.Millisecond, Advertise: []string{adv}})
	require.NoError(t, err)
	fmt.Printf("ADDR %s\n", srv.Addr())
	<-make(chan struct{}) // until killed
}

type soakOPCUA struct {
	cmd  *exec.Cmd
	addr string
}

func startSoakOPCUA(t *testing.T, advertise string) *soakOPCUA {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSoakOPCUAServer$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), opcuaEnv+"="+advertise)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "OPC UA server subprocess")
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	require.True(t, ok, "OPC UA server subprocess said %q", line)
	return &soakOPCUA{cmd: cmd, addr: addr}
}

func (o *soakOPCUA) kill() {
	_ = o.cmd.Process.Kill()
	_ = o.cmd.Wait()
}

func opcuaTagsYAML(indent string) string {
	var b strings.Builder
	for _, p := range sim.OPCUAPoints() {
		fmt.Fprintf(&b, "%s- {id: %s, unit: %q, kind: %s, node: %q", indent, p.ID, p.Unit, p.Kind, p.Node)
		if p.Kind == "counter" {
			fmt.Fprintf(&b, ", width: 64, max_rate: %s", p.MaxRate)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	dir := t.TempDir()
	mq, err := sim.StartMosquitto(dir, sim.MosquittoOptions{Persistence: true})
	if errors.Is(err, sim.ErrNoMosquitto) && os.Getenv("CI") != "true" {
		t.Skip("mosquitto is not installed (apt-get install mosquitto)")
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = mq.Kill() })

	key, err := seal.GenerateKey()
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "gateway.key")
	require.NoError(t, seal.WriteKey(keyFile, key))

	kiln, err := sim.StartKiln("127.0.0.1:0", sim.KilnOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { kiln.Close() })
	pot, err := sim.StartPotLine("127.0.0.1:0", sim.PotLineOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { pot.Close() })
	kilnRelay, err := sim.NewRelay(kiln.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { kilnRelay.Close() })
	potRelay, err := sim.NewRelay(pot.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { potRelay.Close() })
	uaRelay, err := sim.NewRelay("")
	require.NoError(t, err)
	t.Cleanup(func() { uaRelay.Close() })
	// The OPC UA server runs in a child process (this test binary): its restarts are kills,
	// and gopcua's subscription goroutines, which outlive Server.Close, stay out of goleak's way.
	ua := startSoakOPCUA(t, uaRelay.Addr())
	uaRelay.SetBackend(ua.addr)
	t.Cleanup(func() { ua.kill() })

	statusPort, err := sim.FreePort("127.0.0.1")
	require.NoError(t, err)
	statusBase := fmt.Sprintf("http://127.0.0.1:%d", statusPort)
	cfgText := fmt.Sprintf(`gateway: {site: %s, id: %s}
key_file: %q
buffer: {path: %q, max_bytes: 1MiB}
blocks: {max_records: 500, max_age: 250ms, heartbeat: 2s}
mqtt: {url: %q, client_id: mrv-soak-agent}
status: {listen: "127.0.0.1:%d"}
log: {level: info, format: text}
sources:
  - name: kiln1
    kind: modbus
    interval: 50ms
    timeout: 40ms
    modbus: {url: "tcp://%s"}
    tags:
%s  - name: line1
    kind: modbus
    interval: 50ms
    timeout: 40ms
    modbus: {url: "tcp://%s"}
    tags:
%s  - name: uakiln
    kind: opcua
    interval: 200ms
    timeout: 150ms
    opcua: {endpoint: %q, security: none, auth: anonymous}
    tags:
%s`, soakSite, soakGateway, keyFile, filepath.Join(dir, "buffer.db"), mq.URL(), statusPort,
		kilnRelay.Addr(), sim.TagsYAML(sim.KilnPoints(), "      "),
		potRelay.Addr(), sim.TagsYAML(sim.PotLinePoints(), "      "),
		sim.EndpointVia(uaRelay.Addr()), opcuaTagsYAML("      "))
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(cfgText), 0o600))
	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	require.NoError(t, err)
	defer logFile.Close()

	v := startSoakVerifier(t, mq.URL(), key.Public)
	t.Cleanup(func() { v.stop(t) })

	agent := startSoakAgent(t, cfg, logFile)
	t.Cleanup(func() { agent.signal(syscall.SIGKILL) })
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("agent log (tail):\n%s\nmosquitto: %s", b, mq.Log())
		}
	})
	require.Eventually(t, func() bool { return v.Summary().Readings > 100 }, 30*time.Second, 100*time.Millisecond, "first readings")

	faults := map[string]int{}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	t.Logf("soak: %s, status %s, work dir %s", dur, statusBase, dir)
	start := time.Now()
	phaseB := start.Add(dur * 4 / 10)
	end := start.Add(dur * 95 / 100)

	sourceFault := func(name string, set func(sim.Fault)) {
		n := 5 + rng.IntN(40)
		switch rng.IntN(3) {
		case 0:
			set(sim.Fault{Kind: sim.FaultSlow, Delay: 60 * time.Millisecond, Count: n})
			faults[name+" slow"]++
		case 1:
			set(sim.Fault{Kind: sim.FaultException, Count: n})
			faults[name+" exception"]++
		default:
			set(sim.Fault{Kind: sim.FaultBusy, Count: n})
			faults[name+" busy"]++
		}
	}
	restartUA := func() {
		ua.kill()
		ua = startSoakOPCUA(t, uaRelay.Addr())
		uaRelay.SetBackend(ua.addr)
		uaRelay.DropAll()
		faults["opcua kill+restart"]++
	}
	// One random fault; agent kills only before phase B.
	inject := func(allowKill bool) {
		switch k := rng.IntN(10); {
		case k == 0:
			sourceFault("kiln", kiln.SetFault)
		case k == 1:
			sourceFault("potline", pot.SetFault)
		case k == 2:
			kilnRelay.DropAll()
			faults["kiln drop"]++
		case k == 3:
			potRelay.DropAll()
			faults["potline drop"]++
		case k == 4:
			restartUA()
		case k == 5:
			require.NoError(t, mq.Stop())
			<-time.After(time.Duration(500+rng.IntN(3000)) * time.Millisecond)
			require.NoError(t, mq.Start())
			faults["mosquitto stop"]++
		case k == 6:
			require.NoError(t, mq.Kill())
			<-time.After(time.Duration(rng.IntN(2000)) * time.Millisecond)
			require.NoError(t, mq.Start())
			faults["mosquitto kill"]++
		case k >= 7 && allowKill:
			agent.signal(syscall.SIGKILL)
			<-time.After(time.Duration(rng.IntN(1000)) * time.Millisecond)
			agent = startSoakAgent(t, cfg, logFile)
			faults["agent kill"]++
		default:
			sourceFault("kiln", kiln.SetFault)
			sourceFault("potline", pot.SetFault)
		}
	}
	wait := func() { <-time.After(time.Duration(2000+rng.IntN(3000)) * time.Millisecond) }

	// Phase A: everything, agent kills included.
	for time.Now().Before(phaseB) {
		inject(true)
		wait()
	}
	progress := func(what string) {
		sum := v.Summary()
		t.Logf("%s (%s): verifier %d blocks, %d readings, gaps %d declared %d undeclared %d filled, %d resend requests, %d failures; faults %v",
			what, time.Since(start).Round(time.Second), sum.Blocks, sum.Readings, sum.GapsDeclared, sum.GapsUndeclared, sum.GapsFilled, sum.ResendRequests, sum.Failures, faults)
	}
	progress("phase A done")
	// Phase B: a fresh agent process that lives to the end.
	agent.signal(syscall.SIGKILL)
	agent = startSoakAgent(t, cfg, logFile)
	faults["agent kill"]++
	var samples []soakSample
	var sampleErrs int
	nextSample := time.Now()
	takeSample := func() {
		if time.Now().Before(nextSample) {
			return
		}
		nextSample = time.Now().Add(sampleEvery)
		if s, err := sample(statusBase, agent); err == nil {
			samples = append(samples, s)
		} else {
			sampleErrs++
		}
	}
	sleepSampling := func(d time.Duration) {
		until := time.Now().Add(d)
		for time.Now().Before(until) {
			takeSample()
			<-time.After(min(time.Until(until), 500*time.Millisecond))
		}
	}
	require.Eventually(t, func() bool { _, err := getStatus(statusBase); return err == nil }, 20*time.Second, 100*time.Millisecond)
	sleepSampling(15 * time.Second) // warm-up; the samples of its last 6 s are the baseline
	baseline := len(samples)

	// The long outage: the broker stays down until the buffer cap drops blocks.
	require.NoError(t, mq.Stop())
	outageStart := time.Now()
	var dropped uint64
	for time.Since(outageStart) < max(outageMaxCap, dur*3/10) {
		if r, err := getStatus(statusBase); err == nil && r.Buffer.Dropped > 0 {
			dropped = r.Buffer.Dropped
			sleepSampling(2 * time.Second) // a little past the cap
			break
		}
		sleepSampling(time.Second)
	}
	outage := time.Since(outageStart)
	require.NoError(t, mq.Start())
	faults["long outage"]++
	require.NotZero(t, dropped, "the buffer cap was not reached in a %s outage", outage)
	t.Logf("long outage: %s, buffer dropped %d blocks", outage.Round(time.Second), dropped)

	for time.Now().Before(end) {
		inject(false)
		wait()
		takeSample()
	}
	progress("faults done")

	// Catch up: every stream published, the verifier holds every seq up to each head.
	var heads map[soakLog]uint64
	var last *status.Report
	var lastErr error
	require.Eventually(t, func() bool {
		takeSample()
		r, err := getStatus(statusBase)
		if err != nil {
			lastErr = err
			return false
		}
		last = r
		heads = map[soakLog]uint64{}
		for _, s := range r.Streams {
			if s.Unpublished > 0 {
				return false
			}
			var id [16]byte
			if b, err := hex.DecodeString(s.LogID); err != nil || len(b) != len(id) {
				return false
			} else {
				copy(id[:], b)
			}
			heads[soakLog{reading.Origin(soakSite, soakGateway, s.Name), id}] = s.NextSeq
		}
		return len(heads) == len(r.Streams) && v.caughtUp(t, heads)
	}, 3*time.Minute, 5*time.Second, "not caught up: status %+v (%v), verifier %+v", last, lastErr, v.Summary())
	takeSample()

	sum := v.stop(t)
	agent.signal(syscall.SIGTERM)

	readings := sum.Readings
	var failures []string
	for _, f := range sum.Findings {
		if f.Failure() || f.Kind == verify.KindGapUndeclared {
			failures = append(failures, f.String())
		}
	}
	kinds := map[string]int{}
	for _, f := range sum.Findings {
		kinds[f.Kind]++
	}
	total := 0
	for _, n := range faults {
		total += n
	}
	t.Logf("faults injected: %d %v", total, faults)
	t.Logf("verifier: %d blocks, %d readings, %d duplicates, gaps declared %d, undeclared %d, filled %d, resend requests %d, failures %d; findings %v",
		sum.Blocks, readings, sum.Duplicates, sum.GapsDeclared, sum.GapsUndeclared, sum.GapsFilled, sum.ResendRequests, sum.Failures, kinds)
	v.mu.Lock()
	t.Logf("signed gap records: %v", v.gapRecords)
	v.mu.Unlock()
	require.Empty(t, failures)
	require.True(t, sum.Clean())
	require.NotZero(t, sum.GapsDeclared, "the buffer cap declared its drops")

	// Flat: after the warm-up, the last samples stay within 1.5× the first ones plus a margin.
	require.GreaterOrEqual(t, baseline, 3, "warm-up samples (%d failed)", sampleErrs)
	require.GreaterOrEqual(t, len(samples), baseline+5, "samples (%d failed)", sampleErrs)
	first, lastS := samples[baseline-3:baseline], samples[len(samples)-3:]
	peak := func(ss []soakSample, f func(soakSample) float64) float64 {
		return slices.Max([]float64{f(ss[0]), f(ss[1]), f(ss[2])})
	}
	for _, c := range []struct {
		name   string
		f      func(soakSample) float64
		margin float64
	}{
		{"rss", func(s soakSample) float64 { return s.rss }, 16 << 20},
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 20},
		{"fds", func(s soakSample) float64 { return s.fds }, 10},
		{"proc fds", func(s soakSample) float64 { return float64(s.procFDs) }, 10},
	} {
		a, b := peak(first, c.f), peak(lastS, c.f)
		all := make([]float64, len(samples))
		for i, s := range samples {
			all[i] = c.f(s)
		}
		t.Logf("%-10s start %.0f end %.0f (min %.0f, max %.0f over %d samples, %s to %s)", c.name, a, b, slices.Min(all), slices.Max(all),
			len(samples), samples[baseline-1].at.Round(time.Second), samples[len(samples)-1].at.Round(time.Second))
		require.LessOrEqual(t, b, a*1.5+c.margin, "%s grew", c.name)
	}
	t.Logf("proc VmRSS: start %d kB, end %d kB", samples[baseline-1].procRSSkB, samples[len(samples)-1].procRSSkB)
}
