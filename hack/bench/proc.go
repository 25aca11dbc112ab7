package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// agentProc is `mrv-agent run -c FILE` as a subprocess.
type agentProc struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed when the process has exited
	err     error         // its exit status, once exited is closed
	log     *lockedBuf
	status  string // http://127.0.0.1:port
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startAgent(bin, cfg, statusAddr string, extra ...string) (*agentProc, error) {
	a := &agentProc{exited: make(chan struct{}), log: &lockedBuf{}, status: "http://" + statusAddr}
	a.cmd = exec.Command(bin, append([]string{"run", "-c", cfg}, extra...)...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.started = time.Now()
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.exited) }()
	return a, nil
}

func (a *agentProc) pid() int { return a.cmd.Process.Pid }

// wait sleeps d, or fails if the agent exits meanwhile.
func (a *agentProc) wait(d time.Duration) error {
	select {
	case <-a.exited:
		return fmt.Errorf("agent exited: %w\n%s", a.err, a.log.String())
	case <-time.After(d):
		return nil
	}
}

// stop ends the agent with SIGTERM (SIGKILL after 15 s), if it still runs.
func (a *agentProc) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.exited
	}
}

func (a *agentProc) kill() {
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// procSample is what /proc says about a process at one instant.
type procSample struct {
	at         time.Time
	cpu        float64 // utime+stime, seconds
	rss, hwm   int64   // VmRSS, VmHWM, bytes
	anon       int64   // RssAnon, bytes
	writeBytes int64   // /proc/PID/io write_bytes
}

func sampleProc(pid int) (procSample, error) {
	p := procSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return p, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return p, err
	}
	p.cpu = (ut + st) / 100 // USER_HZ
	p.rss = procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:", 1024)
	p.hwm = procField(fmt.Sprintf("/proc/%d/status", pid), "VmHWM:", 1024)
	p.anon = procField(fmt.Sprintf("/proc/%d/status", pid), "RssAnon:", 1024)
	p.writeBytes = procField(fmt.Sprintf("/proc/%d/io", pid), "write_bytes:", 1)
	return p, nil
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

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// agentStatus is the part of the agent's /status this driver reads.
type agentStatus struct {
	Gateway  string `json:"gateway"`
	Site     string `json:"site"`
	Pipeline struct {
		Readings uint64 `json:"readings"`
	} `json:"pipeline"`
	Sources []struct {
		Name     string `json:"name"`
		Polls    uint64 `json:"polls"`
		Failures uint64 `json:"failures"`
		Missed   uint64 `json:"missed"`
		LastErr  string `json:"last_error"`
	} `json:"sources"`
	Streams []struct {
		Name        string `json:"name"`
		LogID       string `json:"log_id"`
		NextSeq     uint64 `json:"next_seq"`
		Unpublished int    `json:"unpublished"`
	} `json:"streams"`
	Uplink struct {
		Connected bool `json:"connected"`
	} `json:"uplink"`
}

func (a *agentProc) getStatus() (*agentStatus, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(a.status + "/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s agentStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return &s, nil
}

// reportErrors prints the last error of every source that has failed polls.
func (s *agentStatus) reportErrors(w io.Writer) {
	for _, src := range s.Sources {
		if src.Failures > 0 {
			fmt.Fprintf(w, "bench: source %s: %d of %d polls failed, last: %s\n", src.Name, src.Failures, src.Polls, src.LastErr)
		}
	}
}

// missedPolls sums the sources' skipped ticks and failed polls.
func (s *agentStatus) missedPolls() (missed, failures, polls uint64) {
	for _, src := range s.Sources {
		missed += src.Missed
		failures += src.Failures
		polls += src.Polls
	}
	return
}

// heads returns next seq per log of the record streams.
func (s *agentStatus) heads() (map[logKey]uint64, error) {
	out := map[logKey]uint64{}
	for _, st := range s.Streams {
		b, err := hex.DecodeString(st.LogID)
		if err != nil || len(b) != 16 {
			return nil, fmt.Errorf("status: log id %q", st.LogID)
		}
		var k logKey
		k.origin = s.Site + "/" + s.Gateway + "/" + st.Name
		copy(k.id[:], b)
		out[k] = st.NextSeq
	}
	return out, nil
}

// waitStatus polls /status until the status server answers.
func (a *agentProc) waitStatus(within time.Duration) (*agentStatus, error) {
	deadline := time.Now().Add(within)
	for {
		s, err := a.getStatus()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("agent status: %w\n%s", err, a.log.String())
		}
		if err := a.wait(100 * time.Millisecond); err != nil {
			return nil, err
		}
	}
}
