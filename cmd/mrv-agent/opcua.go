package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/config"
)

// cmdOPCUA dispatches `mrv-agent opcua trust|renew-cert`.
func cmdOPCUA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError("want a subcommand: trust or renew-cert")
	}
	switch args[0] {
	case "trust":
		return cmdOPCUATrust(ctx, args[1:], stdout, stderr)
	case "renew-cert":
		return cmdOPCUARenewCert(ctx, args[1:], stdout, stderr)
	}
	return usageError("unknown subcommand %q (want trust or renew-cert)", args[0])
}

// opcuaSources loads the config named by --config/-c and returns its OPC UA sources
// (only the one named by --source, if given).
func opcuaSources(path, name string) (*config.Config, []config.Source, error) {
	if path == "" {
		return nil, nil, usageError("--config FILE is required")
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	var out []config.Source
	for _, s := range cfg.Sources {
		if s.Kind == "opcua" && (name == "" || s.Name == name) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("%s has no OPC UA source%s", path, map[bool]string{true: " named " + name}[name != ""])
	}
	return cfg, out, nil
}

// cmdOPCUATrust trusts a server certificate: by thumbprint (a refused one the agent kept,
// or one that a configured endpoint presents) or every certificate an endpoint presents.
func cmdOPCUATrust(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("opcua trust", stderr)
	var path string
	fs.StringVar(&path, "config", "", "config file")
	fs.StringVar(&path, "c", "", "config file (short for --config)")
	source := fs.String("source", "", "only this OPC UA source")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2, err: errors.New("")}
	}
	if fs.NArg() != 1 {
		return usageError("want one argument: a certificate thumbprint (sha256, hex; a prefix will do) or an opc.tcp:// endpoint")
	}
	arg := fs.Arg(0)
	_, srcs, err := opcuaSources(path, *source)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	dirs := map[string]bool{}
	for _, s := range srcs {
		dir := s.OPCUA.TrustDir
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		certs, err := candidates(ctx, arg, s)
		if err != nil {
			return err
		}
		for _, der := range certs {
			tp, err := opcua.Trust(dir, der)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "trusted %s in %s\n", tp, dir)
		}
	}
	return nil
}

// candidates returns the certificates arg names for source s.
func candidates(ctx context.Context, arg string, s config.Source) ([][]byte, error) {
	if strings.HasPrefix(arg, "opc.tcp://") {
		certs, err := opcua.ServerCertificates(ctx, arg)
		if err != nil {
			return nil, err
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("%s presents no certificate", arg)
		}
		keys := make([]string, 0, len(certs))
		for k := range certs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := make([][]byte, len(keys))
		for i, k := range keys {
			out[i] = certs[k]
		}
		return out, nil
	}
	tp := strings.ToLower(strings.ReplaceAll(arg, ":", ""))
	if len(tp) < 8 || strings.Trim(tp, "0123456789abcdef") != "" {
		return nil, usageError("%q is neither an opc.tcp:// endpoint nor a hex thumbprint (at least 8 digits)", arg)
	}
	if der, err := opcua.Rejected(s.OPCUA.TrustDir, tp); err == nil {
		return [][]byte{der}, nil
	}
	certs, err := opcua.ServerCertificates(ctx, s.OPCUA.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("thumbprint %s is not among the refused certificates, and %w", tp, err)
	}
	for k, der := range certs {
		if strings.HasPrefix(k, tp) {
			return [][]byte{der}, nil
		}
	}
	return nil, fmt.Errorf("no certificate with thumbprint %s: neither refused before nor presented by %s", tp, s.OPCUA.Endpoint)
}

// cmdOPCUARenewCert replaces the client certificate and key of every OPC UA source.
func cmdOPCUARenewCert(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("opcua renew-cert", stderr)
	var path string
	fs.StringVar(&path, "config", "", "config file")
	fs.StringVar(&path, "c", "", "config file (short for --config)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, srcs, err := opcuaSources(path, "")
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, s := range srcs {
		o := s.OPCUA
		if done[o.CertFile] {
			continue
		}
		done[o.CertFile] = true
		id, err := opcua.RenewIdentity(o.CertFile, o.KeyFile, opcua.ApplicationURI(cfg.Gateway.Site, cfg.Gateway.ID), time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s and %s (mode 0600)\nthumbprint %s, valid until %s\n", o.CertFile, o.KeyFile,
			id.Thumbprint(), id.NotAfter.Format(time.RFC3339))
	}
	fmt.Fprintln(stdout, "restart the agent to use it; servers that pin client certificates must trust the new one")
	return nil
}
