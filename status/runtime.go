package status

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// The standard Go and process metrics, under the names client_golang's collectors use.
var (
	descGoroutines = &desc{"go_goroutines", "Number of goroutines that currently exist.", typeGauge, nil}
	descGoInfo     = &desc{"go_info", "Information about the Go environment.", typeGauge, []string{"version"}}
	descHeapAlloc  = &desc{"go_memstats_heap_alloc_bytes",
		"Number of heap bytes allocated and currently in use. Equals to /memory/classes/heap/objects:bytes.", typeGauge, nil}
	descSys = &desc{"go_memstats_sys_bytes",
		"Number of bytes obtained from system. Equals to /memory/classes/total:bytes.", typeGauge, nil}

	descCPU       = &desc{"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", typeCounter, nil}
	descOpenFDs   = &desc{"process_open_fds", "Number of open file descriptors.", typeGauge, nil}
	descMaxFDs    = &desc{"process_max_fds", "Maximum number of open file descriptors.", typeGauge, nil}
	descVirtual   = &desc{"process_virtual_memory_bytes", "Virtual memory size in bytes.", typeGauge, nil}
	descResident  = &desc{"process_resident_memory_bytes", "Resident memory size in bytes.", typeGauge, nil}
	descStartTime = &desc{"process_start_time_seconds", "Start time of the process since unix epoch in seconds.", typeGauge, nil}
)

// writeGoMetrics writes the Go runtime metrics, read through runtime/metrics (which, unlike
// runtime.ReadMemStats, does not stop the world).
func writeGoMetrics(e *exposition) {
	samples := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
	}
	metrics.Read(samples)
	for i, d := range []*desc{descGoroutines, descHeapAlloc, descSys} {
		if v := samples[i].Value; v.Kind() == metrics.KindUint64 {
			e.sample(d, float64(v.Uint64()))
		}
	}
	e.sample(descGoInfo, 1, runtime.Version())
}

// userHZ is the unit of the clock-tick fields of /proc/PID/stat: USER_HZ, 100 on every
// Linux architecture (procfs assumes the same).
const userHZ = 100

// writeProcessMetrics writes the process metrics read from proc (/proc on Linux). A metric
// that cannot be read is left out; the scrape never fails for it.
func writeProcessMetrics(e *exposition, proc string) {
	if st, err := readProcStat(filepath.Join(proc, "self", "stat")); err == nil {
		e.sample(descCPU, float64(st.utime+st.stime)/userHZ)
		e.sample(descVirtual, float64(st.vsize))
		e.sample(descResident, float64(st.rss*uint64(os.Getpagesize())))
		if boot, err := readBootTime(filepath.Join(proc, "stat")); err == nil {
			e.sample(descStartTime, float64(boot)+float64(st.starttime)/userHZ)
		}
	}
	if ents, err := os.ReadDir(filepath.Join(proc, "self", "fd")); err == nil {
		e.sample(descOpenFDs, float64(len(ents)))
	}
	if n, err := readMaxFDs(filepath.Join(proc, "self", "limits")); err == nil {
		e.sample(descMaxFDs, n)
	}
}

// procStat is what the process metrics need from /proc/PID/stat.
type procStat struct {
	utime, stime uint64 // clock ticks
	starttime    uint64 // clock ticks after boot
	vsize        uint64 // bytes
	rss          uint64 // pages
}

// readProcStat parses /proc/PID/stat (proc(5)).
func readProcStat(path string) (procStat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces and parentheses:
	// the fields from 3 on follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("%s: unexpected format", path)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 24-3+1 {
		return procStat{}, fmt.Errorf("%s: unexpected format", path)
	}
	var st procStat
	for _, x := range []struct {
		field int
		dst   *uint64
	}{{14, &st.utime}, {15, &st.stime}, {22, &st.starttime}, {23, &st.vsize}, {24, &st.rss}} {
		if *x.dst, err = strconv.ParseUint(f[x.field-3], 10, 64); err != nil {
			return procStat{}, err
		}
	}
	return st, nil
}

// readMaxFDs reads the soft limit of open files from /proc/PID/limits.
func readMaxFDs(path string) (float64, error) {
	v, err := scanField(path, "Max open files")
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(v, 64) // "unlimited" is an error: the metric is left out
}

// readBootTime reads the boot time (Unix seconds) from /proc/stat.
func readBootTime(path string) (uint64, error) {
	v, err := scanField(path, "btime")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// scanField returns the first word after prefix on the first line of the file that starts
// with prefix followed by a space.
func scanField(path, prefix string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix+" "); ok {
			if w := strings.Fields(rest); len(w) > 0 {
				return w[0], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: unexpected format", path)
}
