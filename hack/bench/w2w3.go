package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/hack/bench/internal/bank"
	"github.com/mrv-agent/mrv-agent/sim"
)

// runW2: o.w2Modbus (50) Modbus devices (one server and one connection each) × 50 float32
// every 200 ms, plus 7,500 OPC UA Double variables changing every second on o.w2UA servers.
// -w2-modbus-devices 0 measures W2's OPC UA part alone.
func runW2(o options, run int, t *table) error {
	dir, err := os.MkdirTemp("", "mrv-bench-w2-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mq, err := mosquitto(dir)
	if err != nil {
		return err
	}
	defer func() { _ = mq.Kill() }()
	var sources strings.Builder
	for d := range o.w2Modbus {
		srv, addr, err := bank.Start(bank.Bank{N: 50, Step: 200 * time.Millisecond}, 16)
		if err != nil {
			return err
		}
		defer func() { _ = srv.Stop() }()
		sources.WriteString(modbusSourceYAML(fmt.Sprintf("dev%02d", d), addr, 200*time.Millisecond, []int{1}, 50))
	}
	const items = 7500
	for s := range o.w2UA {
		n := items / o.w2UA
		if s == o.w2UA-1 {
			n = items - n*(o.w2UA-1)
		}
		ua, err := sim.StartOPCUA("127.0.0.1", sim.OPCUAOptions{Tick: time.Second, Variables: n})
		if err != nil {
			return err
		}
		defer func() { _ = ua.Close() }()
		sources.WriteString(opcuaSourceYAML(fmt.Sprintf("ua%d", s), ua.Endpoint(), time.Second, n))
	}
	gw := fmt.Sprintf("w2r%d", run)
	b, err := newBed(filepath.Join(dir, gw), gw, mq.URL(), "1s", sources.String())
	if err != nil {
		return err
	}
	c, err := startCounter(mq.URL(), site, gw, b.key)
	if err != nil {
		return err
	}
	defer c.stop()
	a, err := b.start(o, fmt.Sprintf("w2-run%d", run))
	if err != nil {
		return err
	}
	defer a.stop()
	if _, err := a.waitStatus(20 * time.Second); err != nil {
		return err
	}
	if err := a.wait(time.Until(a.started.Add(10 * time.Second))); err != nil {
		return err
	}
	m0, err := takeMark(a, c)
	if err != nil {
		return err
	}
	if err := a.wait(o.w2Window); err != nil {
		return err
	}
	m1, err := takeMark(a, c)
	if err != nil {
		return err
	}
	offered := o.w2Modbus*50*5 + items
	n, _, err := addWindow(t, "W2", fmt.Sprint(offered), offered, m0, m1, a)
	if err != nil {
		return err
	}
	t.add("W2", "agent peak RSS (VmHWM)", "MiB", "≤ 48", float64(m1.p.hwm)/(1<<20))
	t.add("W2", "agent RssAnon at the end", "MiB", "", float64(m1.p.anon)/(1<<20))
	addOthersCPU(t, "W2", m0, m1, n)
	return nil
}

// runW3 runs agent/'s in-process W3 benchmarks (go test -tags integration): ingest at
// 10,000/s and at o.w3Max offered, and the 1,000,000-reading backlog drain.
func runW3(o options, t *table) error {
	type job struct {
		bench string
		rate  int
	}
	jobs := []job{{"BenchmarkW3Ingest", 10000}, {"BenchmarkW3Ingest", o.w3Max}, {"BenchmarkW3Drain", 0}}
	if o.smoke {
		jobs = []job{{"BenchmarkW3Ingest", o.w3Max}, {"BenchmarkW3Drain", 0}}
	}
	for _, j := range jobs {
		cmd := exec.Command("go", "test", "-tags", "integration", "-run", "^$",
			"-bench", "^"+j.bench+"$", "-benchtime", "1x", "-count", "1", "-timeout", "10m", "./agent")
		cmd.Env = append(os.Environ(), fmt.Sprintf("MRV_BENCH_RATE=%d", j.rate))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w\n%s", j.bench, err, out.String())
		}
		m := parseBench(out.String(), j.bench)
		if len(m) == 0 {
			return fmt.Errorf("%s: no result\n%s", j.bench, out.String())
		}
		switch {
		case j.bench == "BenchmarkW3Drain":
			t.add("W3", "backlog drained per second (ingest continuing at 10,000/s)", "/s", "≥ 100000", m["drained-records/s"])
			t.add("W3", "backlog at connect", "readings", "", m["backlog-records"])
		case j.rate == 10000:
			t.add("W3", "process CPU-s per 10,000 readings at 10,000/s", "CPU-s", "", m["cpu-s/10k-readings"])
		default:
			t.add("W3", fmt.Sprintf("sustained readings/s end to end (PUBACKed, %d offered)", j.rate), "/s", "≥ 100000", m["puback-records/s"])
			t.add("W3", "process CPU-s per 10,000 readings at max", "CPU-s", "", m["cpu-s/10k-readings"])
			t.add("W3", "bytes on disk per reading (file ÷ records)", "B", "", m["file-bytes/record"])
			t.add("W3", "bytes written per reading (write_bytes)", "B", "", m["written-bytes/reading"])
			t.add("W3", "VmHWM at max", "MiB", "", m["VmHWM-MiB"])
		}
	}
	return nil
}

// parseBench returns the metrics of one `go test -bench` result line.
func parseBench(out, name string) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[0], name) {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
	}
	return m
}

// markdown renders the table: median and range per figure.
func (t *table) markdown() string {
	var b strings.Builder
	b.WriteString("| workload | figure | target | median | range (runs) |\n|---|---|---|---|---|\n")
	for _, r := range t.rows {
		v := append([]float64(nil), r.vals...)
		sort.Float64s(v)
		med := v[len(v)/2]
		if len(v)%2 == 0 {
			med = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		unit := r.unit
		if unit != "" {
			unit = " " + unit
		}
		rng := fmt.Sprintf("%s – %s (%d)", num(v[0]), num(v[len(v)-1]), len(v))
		if len(v) == 1 {
			rng = "(1)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | **%s**%s | %s |\n", r.workload, r.name, r.target, num(med), unit, rng)
	}
	return b.String()
}

func num(f float64) string {
	switch a := abs(f); {
	case a == 0:
		return "0"
	case a >= 1000:
		return strconv.FormatFloat(f, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(f, 'f', 1, 64)
	case a >= 0.1:
		return strconv.FormatFloat(f, 'f', 2, 64)
	}
	return strconv.FormatFloat(f, 'f', 3, 64)
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

const (
	docBegin = "<!-- make bench-full: begin (generated by hack/bench; edits inside are overwritten) -->"
	docEnd   = "<!-- make bench-full: end -->"
)

// writeDoc puts the table, with machine, date and command, between the markers of
// o.doc (appending them at the end the first time), leaving every other section alone.
func writeDoc(o options, tableMD string) error {
	old, err := os.ReadFile(o.doc)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Reference workloads W1, W2, W3 (`make bench-full`, %s)\n\n", docBegin, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Machine: %d CPUs (`nproc`), %q, %s/%s, %s. Command: `%s`. %d run(s) of each workload; median and\n",
		runtime.NumCPU(), cpuModel(), runtime.GOOS, runtime.GOARCH, runtime.Version(), strings.Join(append([]string{"go run ./hack/bench"}, os.Args[1:]...), " "), o.runs)
	b.WriteString("min – max. The agent is a subprocess (`mrv-agent run`, the gateway build of `make build-gateway`, default GOGC); CPU is its utime+stime from /proc/PID/stat, the\n" +
		"driver (simulators, the verifier counting readings) and Mosquitto are reported apart. Shared, noisy machine.\n\n")
	b.WriteString(tableMD)
	b.WriteString(docEnd + "\n")
	s := string(old)
	i, j := strings.Index(s, docBegin), strings.Index(s, docEnd)
	if i >= 0 && j > i {
		s = s[:i] + b.String() + strings.TrimPrefix(s[j+len(docEnd):], "\n")
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + b.String()
	}
	return os.WriteFile(o.doc, []byte(s), 0o644)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
