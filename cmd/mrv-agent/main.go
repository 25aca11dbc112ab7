// Command mrv-agent reads meters over Modbus (and OPC UA), seals every reading into signed,
// hash-chained blocks, keeps them in a durable buffer and forwards them over MQTT, so that
// an independent verifier can prove each number came from this gateway unaltered and
// that nothing was dropped or reordered. Run `mrv-agent help` for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is set at build time: -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit status through the command functions: only main calls os.Exit.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is a command-line mistake: exit status 2.
func usageError(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "-c FILE", "run the agent", cmdRun},
		{"demo", "[--duration D]", "simulated kiln + embedded broker + agent + verifier in one process", cmdDemo},
		{"validate", "-c FILE [--plan]", "check a config file and report every problem; --plan prints the Modbus requests", cmdValidate},
		{"example-config", "", "print the embedded, commented example config", cmdExampleConfig},
		{"keygen", "-o FILE", "write a new Ed25519 key (FILE, mode 0600) and its public key (FILE.pub)", cmdKeygen},
		{"rotate-key", "-c FILE", "rotate the gateway key: the running agent (or this command) seals the change in every stream", cmdRotateKey},
		{"verify", "(--broker URL --topic F [--duration D] | --file F) (--pubkey FILE... | --tofu) [--json]", "verify signed streams", cmdVerify},
		{"capture", "--broker URL --topic F --out FILE [--duration D]", "record envelopes to a capture file", cmdCapture},
		{"sim", "[--listen ADDR]", "run the simulated kiln (Modbus TCP) alone", cmdSim},
		{"browse", "ENDPOINT [--depth N] [--yaml] [--security P --mode M --auth A ...] [--config FILE]", "print an OPC UA server's address space (or a tags: snippet)", cmdBrowse},
		{"opcua", "trust --config FILE THUMBPRINT|ENDPOINT | renew-cert --config FILE", "trust an OPC UA server certificate; replace the client certificate", cmdOPCUA},
		{"status", "[--addr A | -c FILE]", "print a running agent's status; exit 1 when it is not ready", cmdStatus},
		{"version", "", "print version, commit and Go version", cmdVersion},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mrv-agent COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n  %-15s   %s\n", c.name, c.help, "", c.args)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		if err == nil {
			return 0
		}
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.err != nil && ee.err.Error() != "" {
				fmt.Fprintf(stderr, "mrv-agent %s: %v\n", c.name, ee.err)
			}
			return ee.code
		}
		fmt.Fprintf(stderr, "mrv-agent %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "mrv-agent: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// newFlags returns a flag set whose parse errors become usage errors (exit 2).
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mrv-agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2, err: errors.New("")}
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parse(newFlags("version", stderr), args); err != nil {
		return err
	}
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "mrv-agent %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// newLogger builds the process logger: text on a terminal, JSON otherwise (format "auto").
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log.level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" || format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log.format %q: want text, json or auto", format)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
