package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/status"
	"github.com/mrv-agent/mrv-agent/uplink"
	"github.com/mrv-agent/mrv-agent/verify"
)

// minimalYAML is the smallest valid config; tests append or replace keys.
const minimalYAML = `gateway: {site: plant-a, id: gw1}
key_file: /var/lib/mrv/gw.key
mqtt: {url: "mqtts://broker.example:8883", client_id: gw1}
sources:
  - name: kiln1
    kind: modbus
    modbus: {url: "tcp://127.0.0.1:502"}
    tags: [{id: power, unit: kW, register: holding, address: 0, type: float32}]
`

const opcuaSourceYAML = `  - name: line1
    kind: opcua
    opcua: {endpoint: "opc.tcp://127.0.0.1:4840"%s}
    tags: [{id: current, unit: kA, node: "i=2258"}]
`

// TestSecureDefaults asserts, one row per promise of docs/security.md, that the secure
// behaviour is the default and that each weaker one needs an explicit (and logged) opt-in.
func TestSecureDefaults(t *testing.T) {
	parse := func(t *testing.T, extra string) (*config.Config, error) {
		t.Helper()
		return config.Parse([]byte(minimalYAML+extra), "test.yaml")
	}
	captured := func() (*slog.Logger, *bytes.Buffer) {
		var b bytes.Buffer
		return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
	}
	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"mqtt TLS verifies the broker by default", func(t *testing.T) {
			c, err := parse(t, "")
			require.NoError(t, err)
			require.False(t, c.MQTT.InsecureSkipVerify)
			log, out := captured()
			tc, err := uplink.TLSConfig(c.MQTT.CAFile, c.MQTT.CertFile, c.MQTT.KeyFile, c.MQTT.InsecureSkipVerify, log)
			require.NoError(t, err)
			require.False(t, tc.InsecureSkipVerify)
			require.GreaterOrEqual(t, tc.MinVersion, uint16(tls.VersionTLS12))
			require.Empty(t, out.String())
		}},
		{"mqtt insecure_skip_verify is an explicit, logged opt-in", func(t *testing.T) {
			_, err := parse(t, "")
			require.NoError(t, err)
			_, err = config.Parse([]byte(strings.Replace(minimalYAML, "mqtts://broker.example:8883\"", "mqtt://broker.example:1883\", insecure_skip_verify: true", 1)), "t.yaml")
			require.ErrorContains(t, err, "only applies to mqtts://")
			log, out := captured()
			tc, err := uplink.TLSConfig("", "", "", true, log)
			require.NoError(t, err)
			require.True(t, tc.InsecureSkipVerify)
			require.Contains(t, out.String(), "level=WARN")
			require.Contains(t, out.String(), "NOT verified")
		}},
		{"opcua security must be given; none is explicit and logged", func(t *testing.T) {
			_, err := parse(t, strings.ReplaceAll(opcuaSourceYAML, "%s", ""))
			require.ErrorContains(t, err, "security")
			c, err := parse(t, strings.ReplaceAll(opcuaSourceYAML, "%s", ", security: none"))
			require.NoError(t, err)
			log, out := captured()
			src, err := opcua.New(c.Sources[1], log, opcua.Options{Site: "plant-a", Gateway: "gw1"})
			require.NoError(t, err)
			require.NoError(t, src.Close())
			require.Contains(t, out.String(), "opcua security none")
		}},
		{"opcua accepts only trusted server certificates unless accept_any_server_cert (logged)", func(t *testing.T) {
			c, err := parse(t, strings.ReplaceAll(opcuaSourceYAML, "%s", ", security: basic256sha256"))
			require.NoError(t, err)
			require.False(t, c.Sources[1].OPCUA.AcceptAnyServerCert)
			require.Equal(t, "signandencrypt", c.Sources[1].OPCUA.Mode)
			require.NotEmpty(t, c.Sources[1].OPCUA.TrustDir)
			// accept_any_server_cert is an opt-in, logged at start.
			dir := t.TempDir()
			c, err = parse(t, strings.ReplaceAll(opcuaSourceYAML, "%s", `, security: basic256sha256, accept_any_server_cert: true, `+
				`cert_file: "`+filepath.Join(dir, "c.crt")+`", key_file: "`+filepath.Join(dir, "c.key")+`"`))
			require.NoError(t, err)
			require.True(t, c.Sources[1].OPCUA.AcceptAnyServerCert)
			log, out := captured()
			src, err := opcua.New(c.Sources[1], log, opcua.Options{Site: "plant-a", Gateway: "gw1"})
			require.NoError(t, err)
			require.NoError(t, src.Close())
			require.Contains(t, out.String(), "level=WARN")
			require.Contains(t, out.String(), "accept_any_server_cert")
			fi, err := os.Stat(filepath.Join(dir, "c.key"))
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the OPC UA client key too")
		}},
		{"key files are written 0600 and refused when group or others can read them", func(t *testing.T) {
			k, err := seal.GenerateKey()
			require.NoError(t, err)
			path := filepath.Join(t.TempDir(), "gw.key")
			require.NoError(t, seal.WriteKey(path, k))
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
				require.NoError(t, os.Chmod(path, mode))
				_, err := seal.LoadKey(path)
				require.ErrorContains(t, err, "chmod 600", "mode %04o", mode)
			}
			require.NoError(t, os.Chmod(path, 0o600))
			_, err = seal.LoadKey(path)
			require.NoError(t, err)
			// A broken key file's error does not quote its content.
			pemText, err := os.ReadFile(path)
			require.NoError(t, err)
			broken := bytes.Replace(pemText, []byte("PRIVATE KEY"), []byte("PRIVATE KEX"), 2)
			require.NoError(t, os.WriteFile(path, broken, 0o600))
			_, err = seal.LoadKey(path)
			require.Error(t, err)
			requireNoKeyMaterial(t, err.Error(), pemText)
		}},
		{"status server on loopback unless authenticated", func(t *testing.T) {
			c, err := parse(t, "")
			require.NoError(t, err)
			require.Equal(t, config.DefaultListen, c.Status.Listen)
			require.True(t, strings.HasPrefix(c.Status.Listen, "127.0.0.1:"))
			for _, l := range []string{"0.0.0.0:9464", ":9464", "192.0.2.1:9464", "[::]:9464"} {
				_, err := parse(t, "status: {listen: \""+l+"\"}\n")
				require.ErrorContains(t, err, "not a loopback address", l)
				require.Error(t, status.CheckListen(l, false), l)
				require.NoError(t, status.CheckListen(l, true), l)
			}
			for _, l := range []string{"127.0.0.1:9464", "[::1]:9464", "localhost:9464"} {
				require.NoError(t, status.CheckListen(l, false), l)
			}
		}},
		{"bounded: blocks, envelopes, resend requests, captures, verifier input", func(t *testing.T) {
			big := make([]byte, seal.MaxEnvelopeBytes+1)
			_, err := reading.DecodeBlock(big[:reading.MaxBlockBytes+1])
			require.ErrorContains(t, err, "more than")
			_, err = seal.Parse(big)
			require.ErrorContains(t, err, "more than")
			_, err = reading.DecodeResendRequest(big[:reading.MaxResendBytes+1])
			require.ErrorContains(t, err, "more than")
			require.Error(t, verify.NewCaptureWriter(&bytes.Buffer{}).Write(time.Now(), "a/b", big))
			// A block the agent may seal (blocks.max_records at its maximum) fits the bounds.
			require.Greater(t, seal.MaxEnvelopeBytes, reading.MaxBlockBytes)
			_, err = parse(t, "blocks: {max_records: 1000000000}\n")
			require.ErrorContains(t, err, "blocks.max_records")
			// The verifier refuses an oversized message as a failure, unread.
			k, err := seal.GenerateKey()
			require.NoError(t, err)
			v, err := verify.New(verify.Options{Keys: []ed25519.PublicKey{k.Public}})
			require.NoError(t, err)
			v.Add(time.Now(), "mrv/v1/plant-a/gw1/kiln1/blocks", big)
			sum := v.Finish()
			require.Equal(t, uint64(1), sum.Failures)
			require.Equal(t, verify.KindBadEnvelope, sum.Findings[0].Kind)
			require.Less(t, len(sum.Findings[0].Detail), 1024, "the finding does not quote the message")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, c.check)
	}
}

// TestKeyNeverLogged runs the agent (debug logging) and its keygen and validate commands and
// checks that no output holds the private key in any encoding.
func TestKeyNeverLogged(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	cfg := bed.ConfigFile(t, bed.Broker.URL())
	text, err := os.ReadFile(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cfg, bytes.Replace(text, []byte("level: info"), []byte("level: debug"), 1), 0o600))
	pemText, err := os.ReadFile(bed.KeyFile)
	require.NoError(t, err)

	var out bytes.Buffer
	cmd := startAgent(t, cfg, &out)
	require.Eventually(t, func() bool { return v.Summary().Readings >= 20 }, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	require.Contains(t, out.String(), "agent stopped")
	requireNoKeyMaterial(t, out.String(), pemText)

	var stdout, stderr bytes.Buffer
	require.Zero(t, run(context.Background(), []string{"validate", "-c", cfg}, &stdout, &stderr), stderr.String())
	requireNoKeyMaterial(t, stdout.String()+stderr.String(), pemText)
}

// requireNoKeyMaterial fails if s holds the private key of pemText (seed or full key) in hex, base64 or
// PEM body form.
func requireNoKeyMaterial(t *testing.T, s string, pemText []byte) {
	t.Helper()
	blk, _ := pem.Decode(pemText)
	require.NotNil(t, blk)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	priv := k.(ed25519.PrivateKey)
	for _, b := range [][]byte{priv.Seed(), priv} {
		for _, enc := range []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b)} {
			require.NotContains(t, s, enc)
		}
	}
	for _, line := range strings.Split(string(pemText), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			require.NotContains(t, s, line, "a line of the PEM key")
		}
	}
}
