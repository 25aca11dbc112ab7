//go:build !nodemo

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
	"github.com/mrv-agent/mrv-agent/emissions"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/sim"
	"github.com/mrv-agent/mrv-agent/verify"
)

// demoConfig is the agent config of the demo: the simulated kiln and pot line polled four
// times a second, blocks sealed every second, the embedded broker, and emission sources
// computing the kiln's CO2 (fuel and calcination, with t CO2/t clinker) and the pot line's
// PFC CO2e. It goes through config.Parse like any file, so the demo exercises the same
// defaults and validation as a deployment. The factors are the defaults of
// mrv-methods.md §7 (the natural gas NCV a plausible lab value).
func demoConfig(dir, kilnURL, potLineURL, brokerURL string) string {
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
%s  - name: potline1
    kind: modbus
    interval: 250ms
    timeout: 200ms
    modbus: {url: %q}
    tags:
%s`, filepath.Join(dir, "gateway.key"), filepath.Join(dir, "buffer.db"), brokerURL,
		kilnURL, sim.TagsYAML(sim.KilnPoints(), "      "), potLineURL, sim.TagsYAML(sim.PotLinePoints(), "      "))
	b.WriteString(`factors:
  - {id: ng-ncv, version: "demo", value: 0.0360, unit: GJ/Nm3, source: demo laboratory value, valid_from: 2020-01-01}
  - {id: ng-ef, version: "1", value: 56.1, unit: t CO2/TJ, source: IPCC 2006 Vol 2 Ch 1, table: "1.4", valid_from: 2006-01-01, default: true}
  - {id: clinker-ef, version: "1", value: 0.525, unit: t CO2/t, source: Cement CO2 and Energy Protocol, table: B1, valid_from: 2011-01-01, default: true}
  - {id: sef-cf4-cwpb, version: "1", value: 0.143, unit: (kg CF4/t)/(AE-min/cell-day), source: IPCC 2006 Vol 3 Ch 4, table: "4.16", valid_from: 2006-01-01, default: true}
  - {id: f-c2f6-cwpb, version: "1", value: 0.121, unit: kg C2F6/kg CF4, source: IPCC 2006 Vol 3 Ch 4, table: "4.16", valid_from: 2006-01-01, default: true}
  - {id: gwp-cf4-ar5, version: "1", value: 6630, unit: t CO2e/t, source: IPCC AR5 WG1 Ch 8, valid_from: 2014-01-01, gwp_set: AR5}
  - {id: gwp-c2f6-ar5, version: "1", value: 11100, unit: t CO2e/t, source: IPCC AR5 WG1 Ch 8, valid_from: 2014-01-01, gwp_set: AR5}
  - {id: ce, version: "demo", value: 95.0, unit: "%", source: demo pot-line current efficiency, valid_from: 2020-01-01}
  - {id: faraday, version: "1", value: 0.3355727, unit: kg/(kA h), source: CODATA Faraday constant, valid_from: 2019-05-20}
emissions:
  - name: kiln1-fuel
    method: fuel
    inputs: {fuel: kiln1.fuel_gas_total, production: kiln1.clinker}
    factors: {ncv: ng-ncv, ef: ng-ef}
    reference: {temperature_degc: 0, pressure_kpa: 101.325}
  - name: kiln1-process
    method: clinker-b
    inputs: {clinker: kiln1.clinker, production: kiln1.clinker}
    factors: {ef_clinker: clinker-ef}
  - name: potline1-pfc
    method: pfc-slope
    gwp_set: AR5
    inputs: {ae_minutes: potline1.ae_minutes, cells: potline1.cells, line_current: potline1.line_current}
    factors: {sef_cf4: sef-cf4-cwpb, f_c2f6: f-c2f6-cwpb, gwp_cf4: gwp-cf4-ar5, gwp_c2f6: gwp-c2f6-ar5, ce_percent: ce, faraday: faraday}
`)
	return b.String()
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	duration := fs.Duration("duration", 75*time.Second, "how long the agent runs (at least 70 s to see a minute of emissions close)")
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

	potLine, err := sim.StartPotLine("127.0.0.1:0", sim.PotLineOptions{})
	if err != nil {
		return fmt.Errorf("start pot line simulator: %w", err)
	}
	defer potLine.Close()
	cfgText := demoConfig(dir, kiln.URL(), potLine.URL(), broker.URL())
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
	a, err := agent.New(cfg, agent.Options{Logger: log, Version: version, StatusListen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	if u := a.StatusURL(); u != "" {
		fmt.Fprintf(stdout, "demo: status page %s (also %sstatus, %smetrics; mrv-agent status --addr %s)\n", u, u, u, a.StatusAddr())
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
	ticks := 0
wait:
	for {
		select {
		case agentErr = <-agentDone:
			break wait
		case <-t.C:
			progress()
			if ticks++; ticks%10 == 0 {
				printEmissions(stdout, a.EmissionWindows(), cfg)
			}
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
	printEmissions(stdout, a.EmissionWindows(), cfg)
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

// printEmissions prints, per emission source, the rolling last hour (once a minute has
// closed) or the open hour so far, with the intensity where production is bound.
func printEmissions(w io.Writer, windows []emissions.Window, cfg *config.Config) {
	// What an intensity is per: the bound production tag, or aluminium estimated from the
	// line current.
	products := map[string]string{}
	for _, e := range cfg.Emissions {
		products[e.Name] = "Al"
		if tag, ok := e.Inputs["production"]; ok {
			products[e.Name] = tag[strings.LastIndex(tag, ".")+1:]
		}
	}
	best := map[string]emissions.Window{}
	var order []string
	for _, win := range windows {
		cur, seen := best[win.Stream]
		if !seen {
			order = append(order, win.Stream)
		}
		if !seen || win.Kind == "rolling-60m" || (win.Kind == reading.WindowHour && cur.Kind != "rolling-60m") {
			best[win.Stream] = win
		}
	}
	for _, name := range order {
		win := best[name]
		unit := "t CO2"
		if strings.HasPrefix(win.Method, "pfc") {
			unit = "t CO2e"
		}
		label := "this hour so far"
		if win.Kind == "rolling-60m" {
			label = "rolling 60 min"
		}
		line := fmt.Sprintf("       emissions %-14s %-17s %10.4f %s", name, label, agent.Tonnes(win), unit)
		if in, ok := win.Values["intensity"]; ok {
			line += fmt.Sprintf("   %.4f %s/t %s", in, unit, products[name])
		}
		fmt.Fprintf(w, "%s   coverage %3.0f%%\n", line, 100*win.Coverage)
	}
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
