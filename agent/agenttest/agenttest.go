// Package agenttest is the end-to-end test bed shared by the agent's and the command's
// tests: a simulated kiln, an embedded broker and a gateway key on loopback, a config for
// them, and a verifier subscribed with a persistent session.
package agenttest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/sim"
	"github.com/mrv-agent/mrv-agent/verify"
)

// Site and Gateway name the test gateway; BlocksTopic matches all its block topics.
const (
	Site        = "test-plant"
	Gateway     = "gw1"
	BlocksTopic = "mrv/v1/" + Site + "/" + Gateway + "/+/blocks"
)

// Bed is a kiln, a broker and a key in a temporary directory; all are closed by t.Cleanup.
type Bed struct {
	Dir     string
	Kiln    *sim.Kiln
	Broker  *sim.Broker
	Key     *seal.Key
	KeyFile string
}

// New starts a bed.
func New(t *testing.T) *Bed {
	t.Helper()
	b := &Bed{Dir: t.TempDir()}
	var err error
	b.Kiln, err = sim.StartKiln("127.0.0.1:0", sim.KilnOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { b.Kiln.Close() })
	b.Broker, err = sim.StartBroker("127.0.0.1:0", nil)
	require.NoError(t, err)
	t.Cleanup(func() { b.Broker.Close() })
	b.Key, err = seal.GenerateKey()
	require.NoError(t, err)
	b.KeyFile = filepath.Join(b.Dir, "gateway.key")
	require.NoError(t, seal.WriteKey(b.KeyFile, b.Key))
	return b
}

// ConfigFile writes an agent config polling the kiln every 100 ms, sealing every 200 ms and
// publishing to mqttURL, and returns its path.
func (b *Bed) ConfigFile(t *testing.T, mqttURL string) string {
	t.Helper()
	text := fmt.Sprintf(`gateway: {site: %s, id: %s}
key_file: %q
buffer: {path: %q}
blocks: {max_records: 500, max_age: 200ms, heartbeat: 2s}
mqtt: {url: %q, client_id: mrv-test-agent}
log: {level: info, format: text}
sources:
  - name: kiln1
    kind: modbus
    interval: 100ms
    timeout: 80ms
    modbus: {url: %q}
    tags:
%s`, Site, Gateway, b.KeyFile, filepath.Join(b.Dir, "buffer.db"), mqttURL, b.Kiln.URL(), sim.TagsYAML(sim.KilnPoints(), "      "))
	path := filepath.Join(b.Dir, "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o600))
	return path
}

// Verifier is a verifier subscribed to the bed's broker, recording every accepted record.
type Verifier struct {
	*verify.Verifier
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	records []verify.RecordOut
}

// Subscribe starts a verifier on the bed's embedded broker; see SubscribeTo.
func (b *Bed) Subscribe(t *testing.T) *Verifier {
	t.Helper()
	return b.SubscribeTo(t, b.Broker.URL())
}

// SubscribeTo starts a verifier (persistent session, trusting only the bed's key) on the
// broker at url and waits until the broker acknowledged its subscription.
func (b *Bed) SubscribeTo(t *testing.T, url string) *Verifier {
	t.Helper()
	v := &Verifier{done: make(chan error, 1)}
	var err error
	v.Verifier, err = verify.New(verify.Options{Keys: []ed25519.PublicKey{b.Key.Public}, OnRecord: func(r verify.RecordOut) {
		v.mu.Lock()
		v.records = append(v.records, r)
		v.mu.Unlock()
	}})
	require.NoError(t, err)
	var ctx context.Context
	ctx, v.cancel = context.WithCancel(context.Background())
	ready := make(chan struct{})
	go func() {
		v.done <- verify.Subscribe(ctx, verify.SubscribeConfig{Broker: url, Topic: BlocksTopic,
			ClientID: "test-verifier", Ready: func() { close(ready) }}, v.Add)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		v.cancel()
		t.Fatal("verifier did not subscribe within 10s")
	}
	t.Cleanup(func() {
		v.cancel()
		if err := <-v.done; err != nil {
			t.Errorf("verifier subscription: %v", err)
		}
	})
	return v
}

// Mosquitto starts a real Mosquitto for an integration test, closed by t.Cleanup. Without
// the broker installed the test is skipped, except under CI=true, where it fails: a suite
// CI skips is a suite that does not exist.
func Mosquitto(t *testing.T, opts sim.MosquittoOptions) *sim.Mosquitto {
	t.Helper()
	m, err := sim.StartMosquitto(t.TempDir(), opts)
	if errors.Is(err, sim.ErrNoMosquitto) && os.Getenv("CI") != "true" {
		t.Skip("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := m.Kill(); err != nil {
			t.Errorf("stop mosquitto: %v", err)
		}
	})
	return m
}

// Records returns a copy of the records accepted so far.
func (v *Verifier) Records() []verify.RecordOut {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]verify.RecordOut(nil), v.records...)
}

// Stop ends the subscription and returns the final summary.
func (v *Verifier) Stop(t *testing.T) verify.Summary {
	t.Helper()
	v.cancel()
	require.NoError(t, <-v.done)
	v.done <- nil // for the cleanup
	return v.Finish()
}
