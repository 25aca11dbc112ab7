//go:build integration

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// unitExecStart is the binary path packaging/mrv-agent.service starts.
const unitExecStart = "/usr/local/bin/mrv-agent"

// TestIntegrationSystemdUnitVerifies runs `systemd-analyze verify` on the shipped unit with
// a freshly built mrv-agent at its ExecStart path: the unit must verify without a single
// warning. The binary is installed at /usr/local/bin only when nothing is there already
// (and removed afterwards); otherwise a copy of the unit points at the built binary.
func TestIntegrationSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (apt-get install systemd)")
		}
		t.Skip("systemd-analyze is not installed (apt-get install systemd)")
	}
	unit, err := os.ReadFile(filepath.Join("..", "..", "packaging", "mrv-agent.service"))
	require.NoError(t, err)
	require.Contains(t, string(unit), "ExecStart="+unitExecStart+" run -c ", "the unit starts the installed binary")
	for _, want := range []string{"Type=notify", "WatchdogSec=", "StateDirectory=mrv-agent", "User=mrv-agent", "DynamicUser=no",
		"ProtectSystem=strict", "ReadWritePaths=/var/lib/mrv-agent", "NoNewPrivileges=yes", "Restart=on-failure", "RestartSec=5"} {
		require.Contains(t, string(unit), want)
	}
	sysusers, err := os.ReadFile(filepath.Join("..", "..", "packaging", "mrv-agent.sysusers"))
	require.NoError(t, err)
	require.Contains(t, string(sysusers), "u mrv-agent ")

	dir := t.TempDir()
	bin := filepath.Join(dir, "mrv-agent")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	unitPath := filepath.Join(dir, "mrv-agent.service")
	if _, err := os.Stat(unitExecStart); os.IsNotExist(err) && os.Geteuid() == 0 {
		data, err := os.ReadFile(bin)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(unitExecStart, data, 0o755))
		t.Cleanup(func() { os.Remove(unitExecStart) })
		require.NoError(t, os.WriteFile(unitPath, unit, 0o644))
	} else {
		require.NoError(t, os.WriteFile(unitPath, []byte(strings.ReplaceAll(string(unit), unitExecStart, bin)), 0o644))
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(analyze, "verify", unitPath)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	require.NoError(t, err, "systemd-analyze verify: %s%s", &stdout, &stderr)
	require.Empty(t, strings.TrimSpace(stdout.String()+stderr.String()), "no warnings")
}
