package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/mrv-agent/mrv-agent/agent"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/seal"
)

// loadConfig parses the flags of a command that takes -c FILE and loads the config.
func loadConfig(fs *flag.FlagSet, args []string) (*config.Config, string, error) {
	path := fs.String("c", "", "config file")
	if err := parse(fs, args); err != nil {
		return nil, "", err
	}
	if *path == "" {
		return nil, "", usageError("-c FILE is required")
	}
	cfg, err := config.Load(*path)
	return cfg, *path, err
}

// gcPercent is the garbage collector's target (GOGC) the agent runs at unless the GOGC
// environment variable sets one: a gateway's memory is scarcer than its CPU. At 50 the heap
// stays within 1.5× of what is live instead of 2×, for a few per cent more CPU
// (docs/benchmarks.md).
const gcPercent = 50

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	fs := newFlags("run", stderr)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to `FILE` until the agent stops")
	memProfile := fs.String("memprofile", "", "write an allocations profile (pprof) to `FILE` when the agent stops")
	cfg, _, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	stopProfiles, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	defer stopProfiles()
	log, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	a, err := agent.New(cfg, agent.Options{Logger: log, Version: version})
	if err != nil {
		return err
	}
	log.Info("agent starting", "version", version, "site", cfg.Gateway.Site, "gateway", cfg.Gateway.ID, "sources", len(cfg.Sources))
	if err := a.Run(ctx); err != nil {
		return err
	}
	log.Info("agent stopped")
	return nil
}

func cmdValidate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", stderr)
	showPlan := fs.Bool("plan", false, "print the Modbus request plan of each source")
	cfg, path, err := loadConfig(fs, args)
	if err != nil {
		return err
	}
	plans, err := modbusPlans(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d tags)\n", path, len(cfg.Sources), countTags(cfg))
	if *showPlan {
		printPlans(stdout, plans)
	}
	return nil
}

func countTags(cfg *config.Config) int {
	n := 0
	for _, s := range cfg.Sources {
		n += len(s.Tags)
	}
	return n
}

func cmdExampleConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parse(newFlags("example-config", stderr), args); err != nil {
		return err
	}
	_, err := stdout.Write(config.Example)
	return err
}

func cmdKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", stderr)
	out := fs.String("o", "", "private key file to write (the public key goes to FILE.pub)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError("-o FILE is required")
	}
	k, err := seal.GenerateKey()
	if err != nil {
		return err
	}
	if err := seal.WriteKey(*out, k); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (mode 0600) and %s.pub\nkid %s\n", *out, *out, seal.KidString(k.Kid))
	return nil
}
