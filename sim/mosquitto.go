package sim

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoMosquitto is returned by StartMosquitto when the mosquitto binary is not installed
// (Debian: apt-get install mosquitto mosquitto-clients).
var ErrNoMosquitto = errors.New("mosquitto is not installed")

// MosquittoOptions configure a Mosquitto instance started for tests and benchmarks.
type MosquittoOptions struct {
	// Persistence keeps queued messages of persistent sessions across restarts.
	Persistence bool
	// Extra lines appended to the generated configuration (TLS, password_file, ...).
	Extra []string
}

// Mosquitto is a real Mosquitto broker (Debian's 2.0.x) run as a child process on a free
// loopback port, with a generated configuration. It can be stopped, killed and restarted
// on the same port.
type Mosquitto struct {
	bin  string
	dir  string
	conf string
	port int

	// mu guards cmd and log.
	mu  sync.Mutex
	cmd *exec.Cmd
	log bytes.Buffer
}

// StartMosquitto writes a config into dir (which must exist) and starts the broker.
func StartMosquitto(dir string, opts MosquittoOptions) (*Mosquitto, error) {
	bin, err := mosquittoPath()
	if err != nil {
		return nil, err
	}
	// Mosquitto cannot listen on port 0 and report it, so reserve a port first.
	port, err := FreePort("127.0.0.1")
	if err != nil {
		return nil, err
	}
	m := &Mosquitto{bin: bin, dir: dir, port: port, conf: filepath.Join(dir, "mosquitto.conf")}
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		// A listener line disables anonymous access in 2.x unless allowed explicitly.
		"allow_anonymous true",
		// The default 1000 silently drops a persistent session's queue beyond it.
		"max_queued_messages 1000000",
		"max_inflight_messages 0",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
	}
	if os.Geteuid() == 0 {
		// Started as root, mosquitto would drop to its own user, which cannot write into the
		// test's private temporary directory.
		lines = append(lines, "user root")
	}
	if opts.Persistence {
		lines = append(lines, "persistence true", "persistence_location "+dir+"/", "autosave_interval 1")
	}
	lines = append(lines, opts.Extra...)
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	if err := m.Start(); err != nil {
		return nil, err
	}
	return m, nil
}

// Addr is host:port; URL is "mqtt://host:port".
func (m *Mosquitto) Addr() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

// URL returns "mqtt://127.0.0.1:port".
func (m *Mosquitto) URL() string { return "mqtt://" + m.Addr() }

// TLSURL returns "mqtts://127.0.0.1:port", for a listener configured with TLS lines (see
// PKI.MosquittoTLS).
func (m *Mosquitto) TLSURL() string { return "mqtts://" + m.Addr() }

// Log returns what the broker wrote to stderr.
func (m *Mosquitto) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

// Start starts the broker (again) and waits until it accepts connections.
func (m *Mosquitto) Start() error {
	m.mu.Lock()
	if m.cmd != nil {
		m.mu.Unlock()
		return errors.New("mosquitto already running")
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = &lockedWriter{m}, &lockedWriter{m}
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("start mosquitto: %w", err)
	}
	m.cmd = cmd
	m.mu.Unlock()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr(), 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		select {
		case <-tick.C:
			continue
		case <-deadline:
		}
		break
	}
	_ = m.Kill()
	return fmt.Errorf("mosquitto did not listen on %s within 10s: %s", m.Addr(), m.Log())
}

// Stop ends the broker with SIGTERM (it saves its persistence file) and waits.
func (m *Mosquitto) Stop() error { return m.signal(syscall.SIGTERM) }

// Kill ends the broker with SIGKILL (it loses what it had not saved) and waits.
func (m *Mosquitto) Kill() error { return m.signal(syscall.SIGKILL) }

func (m *Mosquitto) signal(sig syscall.Signal) error {
	m.mu.Lock()
	cmd := m.cmd
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return err
	}
	_ = cmd.Wait() // a signalled process exits non-zero by design
	return nil
}

// mosquittoPath finds the broker: on PATH, or where Debian installs it (/usr/sbin is not on
// every user's PATH).
func mosquittoPath() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil {
		return "/usr/sbin/mosquitto", nil
	}
	return "", ErrNoMosquitto
}

type lockedWriter struct{ m *Mosquitto }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	return w.m.log.Write(p)
}
