//go:build integration

package opcua_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/sim"
)

// startNodeOPCUA runs hack/opcua-server (node-opcua 2.182.x, installed by `npm ci
// --prefix hack/opcua-server`) on a free port and returns its endpoint. Without Node.js or
// the installed package the test is skipped, except under CI=true, where it fails.
func startNodeOPCUA(t *testing.T, user, password string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "hack", "opcua-server")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "node-opcua"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node-opcua test server unavailable (install Node.js, then npm ci --prefix hack/opcua-server): %v", err)
		}
		t.Skipf("node-opcua test server unavailable (npm ci --prefix hack/opcua-server): %v", err)
	}
	port, err := sim.FreePort("127.0.0.1")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "server.js"), strconv.Itoa(port), t.TempDir(), user, password)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				close(ready)
				break
			}
		}
		for sc.Scan() { // keep draining so the server never blocks on stdout
		}
	}()
	select {
	case <-ready: // certificate generation takes ~3 s
	case <-time.After(60 * time.Second):
		t.Fatal("node-opcua server did not start within 60s")
	}
	return "opc.tcp://127.0.0.1:" + strconv.Itoa(port)
}

func TestIntegrationNodeOPCUABasic256Sha256Username(t *testing.T) {
	endpoint := startNodeOPCUA(t, "agent", "s3cret")
	dir := t.TempDir()
	pw := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	for _, collect := range []string{"subscribe", "poll"} {
		t.Run(collect, func(t *testing.T) {
			o := &config.OPCUA{
				Endpoint: endpoint, Security: "basic256sha256", Mode: "signandencrypt", Auth: "username",
				Username: "agent", PasswordFile: pw, CertFile: filepath.Join(dir, "client.crt"), KeyFile: filepath.Join(dir, "client.key"),
				TrustDir: filepath.Join(dir, collect, "trusted"), Collect: collect, PublishingInterval: config.Duration(200 * time.Millisecond), QueueSize: 10,
			}
			src := config.Source{Name: "line1", Kind: "opcua", Interval: config.Duration(500 * time.Millisecond), OPCUA: o, Tags: []config.Tag{
				{ID: "current", Unit: "kA", Node: "nsu=urn:mrv-agent:test:line;s=Line1.Current", Timestamp: "source"},
				{ID: "energy", Unit: "kWh", Kind: "counter", Node: "nsu=urn:mrv-agent:test:line;s=Line1.Energy", Timestamp: "server"},
			}}
			s, err := opcua.New(src, nil, opcua.Options{Site: "plant-a", Gateway: "gw1"})
			require.NoError(t, err)
			defer s.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// First the server's certificate is unknown: refused, with its thumbprint.
			_, err = s.Read(ctx)
			var ue *opcua.UntrustedError
			require.ErrorAs(t, err, &ue)
			der, err := opcua.Rejected(o.TrustDir, ue.Thumbprint)
			require.NoError(t, err)
			_, err = opcua.Trust(o.TrustDir, der)
			require.NoError(t, err)

			got := map[string]reading.Reading{}
			for len(got) < 2 && ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				rs, err := s.Read(rctx)
				rcancel()
				if err != nil {
					t.Logf("read: %v", err)
				}
				for _, r := range rs {
					if r.HasValue {
						got[r.Tag] = r
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			require.Len(t, got, 2, "both tags arrive over Basic256Sha256 SignAndEncrypt with username auth")
			require.Equal(t, reading.Good, got["line1.current"].Quality.Severity)
			require.Equal(t, reading.TimeServer, got["line1.energy"].TimeSource)
		})
	}
}
