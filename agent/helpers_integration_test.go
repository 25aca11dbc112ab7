//go:build integration

package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/uplink"
	"github.com/mrv-agent/mrv-agent/verify"
)

// itConfig loads the bed's config for brokerURL and lets the test adjust it (TLS files,
// credentials, rates) before the agent is built.
func itConfig(t *testing.T, bed *agenttest.Bed, brokerURL string, mutate func(*config.Config)) *config.Config {
	t.Helper()
	cfg, err := config.Load(bed.ConfigFile(t, brokerURL))
	require.NoError(t, err)
	if mutate != nil {
		mutate(cfg)
	}
	return cfg
}

// runningAgent is an agent whose Run goroutine the test stops with stop.
type runningAgent struct {
	*Agent
	cancel context.CancelFunc
	done   chan error
}

func itRunAgent(t *testing.T, cfg *config.Config, log *slog.Logger) *runningAgent {
	t.Helper()
	a, err := New(cfg, Options{Version: "test", Logger: log})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
	})
	return r
}

// stop stops the agent gracefully and returns Run's error.
func (r *runningAgent) stop() error {
	r.cancel()
	r.cancel = nil
	return <-r.done
}

// itVerifier is a verifier subscribed with a persistent session that asks the gateway for
// resends of undeclared gaps (verify.Options.Resend through the subscription's outbox).
type itVerifier struct {
	*verify.Verifier
	cancel context.CancelFunc // ends the clock and the subscription
	done   chan error
	sub    func(ctx context.Context) error
	subCtx context.Context
	pauseF context.CancelFunc // ends the current subscription only
	outbox chan verify.Outgoing

	mu      sync.Mutex
	records []verify.RecordOut
}

// verifierOptions tune startVerifier.
type verifierOptions struct {
	TLS                *tls.Config
	Username, Password string
	NoResend           bool
	ResendRetry        time.Duration // default 3 s
}

func startVerifier(t *testing.T, bed *agenttest.Bed, brokerURL string, o verifierOptions) *itVerifier {
	t.Helper()
	v := &itVerifier{done: make(chan error, 1)}
	outbox := make(chan verify.Outgoing, 256)
	v.outbox = outbox
	if o.ResendRetry == 0 {
		o.ResendRetry = 3 * time.Second
	}
	opts := verify.Options{Keys: []ed25519.PublicKey{bed.Key.Public}, ReorderTimeout: 2 * time.Second,
		ResendRetry: o.ResendRetry, ReorderWindow: 4096,
		OnRecord: func(r verify.RecordOut) {
			v.mu.Lock()
			v.records = append(v.records, r)
			v.mu.Unlock()
		}}
	if !o.NoResend {
		opts.Resend = func(topic string, payload []byte) {
			select {
			case outbox <- verify.Outgoing{Topic: topic, Payload: payload}:
			default:
			}
		}
	}
	var err error
	v.Verifier, err = verify.New(opts)
	require.NoError(t, err)
	var ctx context.Context
	ctx, v.cancel = context.WithCancel(context.Background())
	ready := make(chan struct{})
	var once sync.Once
	v.sub = func(ctx context.Context) error {
		return verify.Subscribe(ctx, verify.SubscribeConfig{Broker: brokerURL, Topic: agenttest.BlocksTopic,
			ClientID: "it-verifier", TLS: o.TLS, Username: o.Username, Password: o.Password,
			Ready: func() { once.Do(func() { close(ready) }) }, Outbox: outbox}, v.Add)
	}
	v.subCtx = ctx
	v.resume()
	go func() { // the verifier's clock: reorder timeouts and resend retries
		tk := time.NewTicker(200 * time.Millisecond)
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
		v.cancel()
		t.Fatal("verifier did not subscribe within 15s")
	}
	t.Cleanup(func() {
		if v.cancel != nil {
			v.cancel()
			<-v.done
		}
		_ = v.Close()
	})
	return v
}

// pause ends the subscription (the broker keeps the persistent session's queue).
func (v *itVerifier) pause(t *testing.T) {
	t.Helper()
	v.pauseF()
	require.NoError(t, <-v.done)
}

// resume subscribes again with the same client id.
func (v *itVerifier) resume() {
	ctx, cancel := context.WithCancel(v.subCtx)
	v.pauseF = cancel
	go func() { v.done <- v.sub(ctx) }()
}

// ask publishes a resend request on the verifier's connection, as the verifier itself
// would (reading.ResendRequest on reading.ResendTopic).
func (v *itVerifier) ask(t *testing.T, stream string, logID [16]byte, first, last uint64) {
	t.Helper()
	payload, err := reading.EncodeResendRequest(&reading.ResendRequest{Stream: stream, LogID: logID[:], First: first, Last: last})
	require.NoError(t, err)
	select {
	case v.outbox <- verify.Outgoing{Topic: reading.ResendTopic(agenttest.Site, agenttest.Gateway), Payload: payload}:
	default:
	}
}

// Records returns a copy of the records accepted so far.
func (v *itVerifier) Records() []verify.RecordOut {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]verify.RecordOut(nil), v.records...)
}

// stop ends the subscription and returns the final summary.
func (v *itVerifier) stop(t *testing.T) verify.Summary {
	t.Helper()
	v.cancel()
	v.cancel = nil
	require.NoError(t, <-v.done)
	return v.Finish()
}

// clientTLS is a TLS configuration trusting caFile, for the test's verifier.
func clientTLS(t *testing.T, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	cfg, err := uplink.TLSConfig(caFile, certFile, keyFile, false, nil)
	require.NoError(t, err)
	return cfg
}

func writeSecret(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
