package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/sim"
)

func TestBrowseSimulator(t *testing.T) {
	srv, err := sim.StartOPCUA("127.0.0.1", sim.OPCUAOptions{Tick: -1})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"browse", srv.Endpoint(), "--depth", "2"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	for _, p := range sim.OPCUAPoints() {
		require.Contains(t, out.String(), p.Node)
		require.Contains(t, out.String(), "/"+p.ID)
	}

	out.Reset()
	code = run(context.Background(), []string{"browse", srv.Endpoint(), "--yaml"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, out.String(), fmt.Sprintf("{id: fuel_gas_flow, unit: \"1\", kind: rate, node: %q}", "nsu="+sim.KilnNamespace+";s=fuel_gas_flow"))

	// The snippet is a valid tags list for an OPC UA source.
	cfg := "gateway: {site: a, id: b}\nmqtt: {url: \"mqtt://127.0.0.1:1\"}\nsources:\n  - name: kiln1\n    kind: opcua\n" +
		"    opcua: {endpoint: \"" + srv.Endpoint() + "\", security: none}\n" + out.String()
	_, err = config.Parse([]byte(cfg), "snippet.yaml")
	require.NoError(t, err)
}

func TestOPCUACertCommands(t *testing.T) {
	dir := t.TempDir()
	srvID, err := opcua.RenewIdentity(filepath.Join(dir, "s.crt"), filepath.Join(dir, "s.key"), "urn:sim", time.Now())
	require.NoError(t, err)
	srv, err := sim.StartOPCUA("127.0.0.1", sim.OPCUAOptions{Tick: -1, Security: "Basic256Sha256", Certificate: srvID.CertDER, Key: srvID.Key})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })
	cfgFile := filepath.Join(dir, "agent.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(fmt.Sprintf(`gateway: {site: plant-a, id: gw1}
key_file: %s/gateway.key
mqtt: {url: "mqtt://127.0.0.1:1"}
sources:
  - name: kiln1
    kind: opcua
    opcua: {endpoint: %q, security: basic256sha256}
    tags: [{id: a, unit: kW, node: "i=2258"}]
`, dir, srv.Endpoint())), 0o600))

	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"opcua", "renew-cert", "--config", cfgFile}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), filepath.Join(dir, "opcua", "client.crt"))
	first, err := os.ReadFile(filepath.Join(dir, "opcua", "client.crt"))
	require.NoError(t, err)
	require.Equal(t, 0, run(context.Background(), []string{"opcua", "renew-cert", "-c", cfgFile}, &out, &errOut), errOut.String())
	second, err := os.ReadFile(filepath.Join(dir, "opcua", "client.crt"))
	require.NoError(t, err)
	require.NotEqual(t, first, second, "renew-cert replaces the certificate")

	// Trust by the thumbprint the server presents (prefix), with no refusal before.
	out.Reset()
	tp := srvID.Thumbprint()
	require.Equal(t, 0, run(context.Background(), []string{"opcua", "trust", "--config", cfgFile, tp[:16]}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "trusted "+tp)
	trusted, err := opcua.TrustedThumbprints(filepath.Join(dir, "opcua", "trusted"))
	require.NoError(t, err)
	require.True(t, trusted[tp])

	// A wrong thumbprint is refused.
	errOut.Reset()
	require.Equal(t, 1, run(context.Background(), []string{"opcua", "trust", "--config", cfgFile, strings.Repeat("0", 16)}, &out, &errOut))
	require.Contains(t, errOut.String(), "no certificate with thumbprint")
}
