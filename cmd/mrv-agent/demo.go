package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mrv-agent/mrv-agent/agent"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/sim"
	"github.com/mrv-agent/mrv-agent/verify"
)

// demoConfig is the agent config of the demo: the simulated kiln polled every second,
// blocks sealed every second, the embedded broker. It goes through config.Parse like any
// file, so the demo exercises the same defaults and validation as a deployment.
func demoConfig(dir, kilnURL, brokerURL string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `gateway: {site: demo-plant, id: gw1}
key_file: %q
buffer: {path: %q, max_bytes: 64MiB, retain: 1h}
blocks: {max_records: 500, max_age: 1s, heartbeat: 10s}
mqtt: {url: %q, client_id: mrv-demo-agent}
log: {level: warn, format: text}
sources:
  - name: kiln1
    kind: modbus
    interval: 250ms
    timeout: 200ms
    modbus: {url: %q}
    tags:
`, filepath.Join(dir, "gateway.key"), filepath.Join(dir, "buffer.db"), brokerURL, kilnURL)
	b.WriteString(sim.TagsYAML(sim.KilnPoints(), "      "))
	return b.String()
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	duration := fs.Duration("duration", 30*time.Second, "how long the agent runs")
	keep := fs.Bool("keep", false, "keep the demo's temporary directory (key, buffer, config)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *duration <= 0 {
		return usageError("--duration must be positive")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	dir, err := os.MkdirTemp("", "mrv-demo-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stdout, "demo files in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	key, err := seal.GenerateKey()
	if err != nil {
		return err
	}
	if err := seal.WriteKey(filepath.Join(dir, "gateway.key"), key); err != nil {
		return err
	}
	kiln, err := sim.StartKiln("127.0.0.1:0", sim.KilnOptions{})
	if err != nil {
		return fmt.Errorf("start kiln simulator: %w", err)
	}
	defer kiln.Close()
	broker, err := sim.StartBroker("127.0.0.1:0", nil)
	if err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	defer broker.Close()

	cfgText := demoConfig(dir, kiln.URL(), broker.URL())
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfgText), 0o600); err != nil {
		return err
	}
	cfg, err := config.Parse([]byte(cfgText), "demo config")
	if err != nil {
		return err
	}
	v, err := verify.New(verify.Options{Keys: []ed25519.PublicKey{key.Public}, Logger: log})
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, agent.Options{Logger: log, Version: version})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "demo: kiln simulator on %s, broker on %s, key %s…, running %s\n", kiln.URL(), broker.URL(), seal.KidString(key.Kid)[:16], *duration)

	// The verifier subscribes first (persistent session) so it sees every block.
	subCtx, stopSub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSub()
	ready := make(chan struct{})
	var g errgroup.Group
	g.Go(func() error {
		return verify.Subscribe(subCtx, verify.SubscribeConfig{
			Broker: broker.URL(), Topic: "mrv/v1/demo-plant/gw1/+/blocks", ClientID: "mrv-demo-verifier", Logger: log,
			Ready: func() { close(ready) },
		}, v.Add)
	})
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		stopSub()
		_ = g.Wait()
		return fmt.Errorf("verifier did not subscribe within 10s")
	case <-ctx.Done():
		stopSub()
		return g.Wait()
	}

	runCtx, stopAgent := context.WithTimeout(ctx, *duration)
	defer stopAgent()
	agentDone := make(chan error, 1)
	g.Go(func() error {
		err := a.Run(runCtx)
		agentDone <- err
		return err
	})
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	progress := func() {
		as, vs := a.Stats(), v.Summary()
		fmt.Fprintf(stdout, "%5.0fs  readings %6d  blocks sealed %5d  published %5d  verified %5d  buffer depth %3d  %s\n",
			time.Since(start).Seconds(), as.Readings, as.Blocks, as.Published, vs.Blocks, as.Unpublished, connState(as.Connected))
	}
	var agentErr error
wait:
	for {
		select {
		case agentErr = <-agentDone:
			break wait
		case <-t.C:
			progress()
			v.Tick(time.Now())
		}
	}
	// Let the verifier receive what the agent published before it stopped.
	deadline := time.Now().Add(10 * time.Second)
	for v.Summary().Blocks+v.Summary().Duplicates < a.Stats().Published && time.Now().Before(deadline) {
		select {
		case <-t.C:
		case <-ctx.Done():
			deadline = time.Now()
		}
	}
	stopSub()
	if err := g.Wait(); err != nil && agentErr == nil {
		agentErr = err
	}
	s := v.Finish()
	progress()
	for _, f := range s.Findings {
		fmt.Fprintln(stdout, "finding:", f.String())
	}
	as := a.Stats()
	fmt.Fprintf(stdout, "verifier: blocks %d, readings %d, duplicates %d, gaps declared %d, undeclared %d, failures %d\n",
		s.Blocks, s.Readings, s.Duplicates, s.GapsDeclared, s.GapsUndeclared, s.Failures)
	if agentErr != nil {
		return agentErr
	}
	switch {
	case !s.Clean():
		return &exitError{code: 1, err: fmt.Errorf("the verifier found integrity problems")}
	case s.Blocks == 0 || s.Blocks < as.Blocks:
		return &exitError{code: 1, err: fmt.Errorf("the verifier received %d of %d sealed blocks", s.Blocks, as.Blocks)}
	}
	fmt.Fprintln(stdout, "demo: every block verified, no undeclared gap")
	return nil
}

func connState(up bool) string {
	if up {
		return "uplink connected"
	}
	return "uplink down"
}

func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sim", stderr)
	listen := fs.String("listen", "127.0.0.1:5020", "Modbus TCP address of the simulated kiln (loopback)")
	if err := parse(fs, args); err != nil {
		return err
	}
	kiln, err := sim.StartKiln(*listen, sim.KilnOptions{})
	if err != nil {
		return err
	}
	defer kiln.Close()
	fmt.Fprintf(stdout, "kiln simulator on %s (holding registers, float32/uint32 ABCD); Ctrl-C to stop\n", kiln.URL())
	for _, p := range sim.KilnPoints() {
		fmt.Fprintf(stdout, "  %-16s %-6s %-7s address %2d %s %s\n", p.ID, p.Unit, p.Kind, p.Address, p.Type, p.Scale)
	}
	<-ctx.Done()
	return nil
}
