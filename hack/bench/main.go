// Command bench runs the reference workloads of BENCHMARKS.md (W1 gateway-3k, W2
// plant-20k, W3 ceiling) for a bounded time and prints one table. The agent runs as a
// subprocess (`mrv-agent run -c generated.yaml`); the simulators (Modbus TCP, OPC UA) and
// the counter (the project's verifier, with resend requests) run in this process and
// Mosquitto (Debian's) as a child, and their CPU is reported apart from the agent's. The
// agent's CPU (utime+stime), VmHWM, RssAnon and write_bytes come from /proc/PID.
//
//	go build -o bin/mrv-agent ./cmd/mrv-agent && go run ./hack/bench -w w1,w3 -smoke   # make bench
//	go run ./hack/bench -w w1,w2,w3 -runs 3 -doc docs/benchmarks.md                   # make bench-full
//
// W3 runs the in-process BenchmarkW3Ingest/BenchmarkW3Drain of agent/ (go test).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/sim"
)

type options struct {
	agent     string
	runs      int
	smoke     bool
	duration  time.Duration // W1 run (window 10 s .. duration-5 s)
	outage    time.Duration
	w2Window  time.Duration
	w2UA      int // OPC UA servers of W2
	w2Modbus  int // Modbus devices of W2
	w3Max     int
	doc       string
	profile   string // directory for CPU profiles of W1/W2 agents
	workloads []string
}

func main() {
	var o options
	var ws string
	flag.StringVar(&o.agent, "agent", "bin/mrv-agent", "mrv-agent binary to benchmark")
	flag.StringVar(&ws, "w", "w1,w2,w3", "workloads to run: w1, w2, w3 (comma-separated)")
	flag.IntVar(&o.runs, "runs", 1, "runs of each workload (medians and ranges over them)")
	flag.BoolVar(&o.smoke, "smoke", false, "short runs: W1 25 s with a 10 s outage, W3 ingest and drain once")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "W1 run (steady window from 10 s to duration-5 s)")
	flag.DurationVar(&o.outage, "outage", 30*time.Second, "W1 broker outage (and the outage the SIGKILL happens in)")
	flag.DurationVar(&o.w2Window, "w2-window", 30*time.Second, "W2 steady window (after 10 s)")
	flag.IntVar(&o.w2UA, "w2-opcua-servers", 15, "OPC UA servers sharing W2's 7,500 items")
	flag.IntVar(&o.w2Modbus, "w2-modbus-devices", 50, "W2's Modbus devices (0: W2's OPC UA part alone)")
	flag.IntVar(&o.w3Max, "w3-max", 150000, "W3 offered rate for the \"max\" run")
	flag.StringVar(&o.doc, "doc", "", "write the results as a section of this markdown file")
	flag.StringVar(&o.profile, "profile", "", "directory to write W1/W2 agent CPU and allocation profiles into")
	flag.Parse()
	o.workloads = strings.Split(ws, ",")
	if o.smoke {
		o.duration, o.outage, o.w2Window = 25*time.Second, 10*time.Second, 15*time.Second
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one figure over the runs.
type result struct {
	workload, name, unit, target string
	vals                         []float64
	note                         string
}

type table struct{ rows []*result }

func (t *table) add(workload, name, unit, target string, v float64) {
	for _, r := range t.rows {
		if r.workload == workload && r.name == name {
			r.vals = append(r.vals, v)
			return
		}
	}
	t.rows = append(t.rows, &result{workload: workload, name: name, unit: unit, target: target, vals: []float64{v}})
}

func run(o options) error {
	if _, err := os.Stat(o.agent); err != nil {
		return fmt.Errorf("agent binary: %w (make build)", err)
	}
	abs, err := filepath.Abs(o.agent)
	if err != nil {
		return err
	}
	o.agent = abs
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
	}
	start := time.Now()
	t := &table{}
	for _, w := range o.workloads {
		for i := range o.runs {
			fmt.Fprintf(os.Stderr, "== %s run %d/%d (%s elapsed)\n", w, i+1, o.runs, time.Since(start).Round(time.Second))
			var err error
			switch strings.TrimSpace(w) {
			case "w1":
				err = runW1(o, i, t)
			case "w2":
				err = runW2(o, i, t)
			case "w3":
				err = runW3(o, t)
			default:
				err = fmt.Errorf("unknown workload %q", w)
			}
			if err != nil {
				return fmt.Errorf("%s run %d: %w", w, i+1, err)
			}
		}
	}
	out := t.markdown()
	fmt.Print(out)
	fmt.Fprintf(os.Stderr, "bench: done in %s\n", time.Since(start).Round(time.Second))
	if o.doc != "" {
		return writeDoc(o, out)
	}
	return nil
}

// mosquitto starts Debian's Mosquitto with persistence in dir, or fails clearly.
func mosquitto(dir string) (*sim.Mosquitto, error) {
	mq, err := sim.StartMosquitto(dir, sim.MosquittoOptions{Persistence: true})
	if errors.Is(err, sim.ErrNoMosquitto) {
		return nil, errors.New("mosquitto is not installed (Debian: apt-get install mosquitto mosquitto-clients)")
	}
	return mq, err
}

// mosquittoCPU is the CPU of the running Mosquitto child of this process, in seconds.
func mosquittoCPU() float64 {
	ents, _ := os.ReadDir("/proc")
	self := fmt.Sprint(os.Getpid())
	total := 0.0
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(mosquitto") {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) > 13 && f[1] == self {
			if p, err := sampleProc(atoi(e.Name())); err == nil {
				total += p.cpu
			}
		}
	}
	return total
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
