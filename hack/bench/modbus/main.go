// Command modbus is the Modbus part of benchmark workload W2 (BENCHMARKS.md): 50 simulated
// devices (one Modbus TCP server and one agent connection each) × 50 float32 values in 100
// holding registers, polled every 200 ms (12,500 readings/s), sealed, stored and published
// by a real agent running as a subprocess to an embedded MQTT broker, and counted by a
// subscriber. It reports the agent's CPU seconds per 10,000 delivered readings over a
// steady window, its peak RSS, and (apart) the CPU of this process: simulators, broker and
// subscriber. It stops by itself after -duration.
//
//	go build -o bin/mrv-agent ./cmd/mrv-agent && go run ./hack/bench/modbus -agent bin/mrv-agent
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/mrv-agent/mrv-agent/hack/bench/internal/bank"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/sim"
)

func main() {
	agentBin := flag.String("agent", "bin/mrv-agent", "mrv-agent binary to benchmark")
	devices := flag.Int("devices", 50, "simulated Modbus devices (one connection each)")
	values := flag.Int("values", 50, "float32 values per device")
	interval := flag.Duration("interval", 200*time.Millisecond, "poll interval")
	warmup := flag.Duration("warmup", 5*time.Second, "time before the measured window")
	duration := flag.Duration("duration", 20*time.Second, "measured window")
	flag.Parse()
	if err := run(*agentBin, *devices, *values, *interval, *warmup, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(agentBin string, devices, values int, interval, warmup, duration time.Duration) error {
	dir, err := os.MkdirTemp("", "mrv-bench-modbus-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.DiscardHandler)

	broker, err := sim.StartBroker("127.0.0.1:0", quiet)
	if err != nil {
		return err
	}
	defer func() { _ = broker.Close() }()

	var cfg strings.Builder
	key, err := seal.GenerateKey()
	if err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "gw.key")
	if err := seal.WriteKey(keyFile, key); err != nil {
		return err
	}
	statusPort, err := sim.FreePort("127.0.0.1")
	if err != nil {
		return err
	}
	fmt.Fprintf(&cfg, `gateway: {site: bench, id: gw}
key_file: %q
buffer: {path: %q}
blocks: {max_records: 500, max_age: 1s, heartbeat: 30s}
mqtt: {url: %q, client_id: mrv-bench}
status: {listen: "127.0.0.1:%d"}
log: {level: warn, format: text}
sources:
`, keyFile, filepath.Join(dir, "buffer.db"), broker.URL(), statusPort)
	for d := range devices {
		srv, addr, err := bank.Start(bank.Bank{N: values, Step: interval}, 4)
		if err != nil {
			return err
		}
		defer func() { _ = srv.Stop() }()
		fmt.Fprintf(&cfg, "  - name: dev%02d\n    kind: modbus\n    interval: %s\n    timeout: %s\n    modbus: {url: \"tcp://%s\"}\n    tags:\n",
			d, interval, interval*3/4, addr)
		for i := range values {
			fmt.Fprintf(&cfg, "      - {id: v%02d, unit: kW, address: %d, type: float32}\n", i, 2*i)
		}
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		return err
	}

	var delivered, blocks atomic.Uint64
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(broker.URL()).SetClientID("bench-sub").
		SetCleanSession(true).SetOrderMatters(false))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscriber connect: %w", tok.Error())
	}
	defer sub.Disconnect(100)
	var decodeErrs atomic.Uint64
	if tok := sub.Subscribe("mrv/v1/bench/gw/+/blocks", 1, func(_ paho.Client, m paho.Message) {
		s, err := seal.Parse(m.Payload())
		if err != nil {
			decodeErrs.Add(1)
			return
		}
		b, err := reading.DecodeBlock(s.Payload)
		if err != nil {
			decodeErrs.Add(1)
			return
		}
		blocks.Add(1)
		for _, r := range b.Records {
			if r.Kind == reading.KindReading {
				delivered.Add(1)
			}
		}
	}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return fmt.Errorf("subscribe: %w", tok.Error())
	}

	var agentLog bytes.Buffer
	cmd := exec.Command(agentBin, "run", "-c", cfgFile)
	cmd.Stdout, cmd.Stderr = &agentLog, &agentLog
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1) // the agent's exit status, once
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			_ = err // a SIGTERM'd agent exits 0; anything else shows in its log
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			err := <-exited
			_ = err
		}
	}

	wait := func(d time.Duration) error {
		select {
		case err := <-exited:
			return fmt.Errorf("agent exited: %w\n%s", err, agentLog.String())
		case <-time.After(d):
			return nil
		}
	}
	if err := wait(warmup); err != nil {
		return err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		stop()
		return err
	}
	self0 := selfCPU()
	n0, t0 := delivered.Load(), time.Now()
	if err := wait(duration); err != nil {
		return err
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		stop()
		return err
	}
	self1 := selfCPU()
	n1, t1 := delivered.Load(), time.Now()
	hwm, anon := procStatus(pid, "VmHWM:"), procStatus(pid, "RssAnon:")
	stop()

	n := float64(n1 - n0)
	if n == 0 {
		return fmt.Errorf("no readings delivered in the window\n%s", agentLog.String())
	}
	secs := t1.Sub(t0).Seconds()
	fmt.Printf("workload: %d devices x %d float32 every %s (%.0f readings/s offered)\n",
		devices, values, interval, float64(devices*values)/interval.Seconds())
	fmt.Printf("window: %.1f s after %s warm-up; delivered %.0f readings (%.0f/s) in %d blocks total; decode errors %d\n",
		secs, warmup, n, n/secs, blocks.Load(), decodeErrs.Load())
	fmt.Printf("agent: %.3f CPU-s per 10,000 readings (%.2f CPU-s in window, %.0f%% of one core); peak RSS %s (VmHWM), RssAnon %s at end\n",
		(cpu1-cpu0)/n*1e4, cpu1-cpu0, 100*(cpu1-cpu0)/secs, hwm, anon)
	fmt.Printf("bench process (simulators + broker + subscriber): %.3f CPU-s per 10,000 readings\n", (self1-self0)/n*1e4)
	if s := agentLog.String(); strings.Contains(s, "lagging") || strings.Contains(s, "level=ERROR") {
		fmt.Printf("agent log:\n%s", s)
	}
	return nil
}

// procCPU returns utime+stime of pid in seconds (/proc/PID/stat fields 14 and 15).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(s[i+2:]) // field 3 (state) is f[0]
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

func procStatus(pid int, key string) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
