//go:build integration

package agent

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/sim"
)

// securedBroker is a Mosquitto in one of the uplink's security modes, with what a client
// needs to reach it.
type securedBroker struct {
	mq     *sim.Mosquitto
	url    string
	pki    *sim.PKI
	vTLS   *tls.Config // for the test's verifier
	vUser  string
	vPass  string
	agent  func(*config.Config) // the agent's settings for this mode
	passwd string               // the agent's password file, if any
}

func startSecured(t *testing.T, mode string) *securedBroker {
	t.Helper()
	dir := t.TempDir()
	pki, err := sim.NewPKI(dir)
	require.NoError(t, err)
	b := &securedBroker{pki: pki}
	var extra []string
	switch mode {
	case "plain":
	case "tls":
		extra = pki.MosquittoTLS(false)
		b.vTLS = clientTLS(t, pki.CAFile, "", "")
		b.agent = func(c *config.Config) { c.MQTT.CAFile = pki.CAFile }
	case "mtls":
		extra = pki.MosquittoTLS(true)
		b.vTLS = clientTLS(t, pki.CAFile, pki.ClientCert, pki.ClientKey)
		b.agent = func(c *config.Config) {
			c.MQTT.CAFile, c.MQTT.CertFile, c.MQTT.KeyFile = pki.CAFile, pki.ClientCert, pki.ClientKey
		}
	case "password":
		users := filepath.Join(dir, "mosquitto.passwd")
		require.NoError(t, sim.WritePasswordFile(users, map[string]string{"agent": "s3cret-agent", "verifier": "s3cret-verifier"}))
		extra = []string{"allow_anonymous false", "password_file " + users}
		b.vUser, b.vPass = "verifier", "s3cret-verifier"
		b.passwd = filepath.Join(dir, "agent.pass")
		require.NoError(t, writeSecret(b.passwd, "s3cret-agent\n"))
		b.agent = func(c *config.Config) { c.MQTT.Username, c.MQTT.PasswordFile = "agent", b.passwd }
	default:
		t.Fatalf("unknown mode %s", mode)
	}
	b.mq = agenttest.Mosquitto(t, sim.MosquittoOptions{Extra: extra})
	b.url = b.mq.URL()
	if b.vTLS != nil {
		b.url = b.mq.TLSURL()
	}
	return b
}

// TestIntegrationSecurityModes connects the agent to Mosquitto in each security mode and
// checks that blocks travel end to end (agent -> Mosquitto -> verifier) with nothing missing.
func TestIntegrationSecurityModes(t *testing.T) {
	for _, mode := range []string{"plain", "tls", "mtls", "password"} {
		t.Run(mode, func(t *testing.T) {
			bed := agenttest.New(t)
			b := startSecured(t, mode)
			v := startVerifier(t, bed, b.url, verifierOptions{TLS: b.vTLS, Username: b.vUser, Password: b.vPass, NoResend: true})
			ra := itRunAgent(t, itConfig(t, bed, b.url, b.agent), nil)
			require.Eventually(t, func() bool { return v.Summary().Readings >= 40 }, 20*time.Second, 20*time.Millisecond,
				"uplink: %+v; mosquitto: %s", ra.pub.Stats(), b.mq.Log())
			require.NoError(t, ra.stop())
			final := ra.Stats()
			require.Eventually(t, func() bool { return v.Summary().Blocks >= final.Blocks }, 10*time.Second, 20*time.Millisecond)
			s := v.stop(t)
			require.True(t, s.Clean(), "findings: %v", s.Findings)
			require.Equal(t, final.Blocks, s.Blocks)
			require.Equal(t, final.Readings, s.Readings)
			require.Zero(t, s.GapsDeclared+s.GapsUndeclared)
		})
	}
}

// TestIntegrationSecurityFailures checks that each misconfiguration fails to connect with
// an error naming its cause, in the uplink's LastError.
func TestIntegrationSecurityFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   string
		agent  func(b *securedBroker, c *config.Config)
		expect []string
	}{
		{"wrong ca", "tls", func(b *securedBroker, c *config.Config) { c.MQTT.CAFile = b.pki.OtherCA },
			[]string{"x509: certificate signed by unknown authority", "not signed by ca_file " + "OTHERCA", "broker 127.0.0.1:"}},
		{"system roots", "tls", func(b *securedBroker, c *config.Config) { c.MQTT.CAFile = "" },
			[]string{"x509: certificate signed by unknown authority", "not signed by the system roots"}},
		{"expired client cert", "mtls", func(b *securedBroker, c *config.Config) {
			c.MQTT.CAFile, c.MQTT.CertFile, c.MQTT.KeyFile = b.pki.CAFile, b.pki.ExpiredCert, b.pki.ExpiredKey
		}, []string{"mqtt client certificate " + "EXPIRED" + " expired at"}},
		{"no client cert", "mtls", func(b *securedBroker, c *config.Config) { c.MQTT.CertFile, c.MQTT.KeyFile = "", "" },
			// The alert (certificate required) or, when the reset beats it, the hint.
			[]string{"broker 127.0.0.1:", "require", "client certificate", "mqtt.cert_file"}},
		{"bad password", "password", func(b *securedBroker, c *config.Config) {
			require.NoError(t, writeSecret(b.passwd, "wrong\n"))
		}, []string{"refused the connection", "CONNACK"}},
		{"no credentials", "password", func(b *securedBroker, c *config.Config) { c.MQTT.Username, c.MQTT.PasswordFile = "", "" },
			[]string{"refused the connection", "CONNACK"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bed := agenttest.New(t)
			b := startSecured(t, tc.mode)
			cfg := itConfig(t, bed, b.url, func(c *config.Config) {
				if b.agent != nil {
					b.agent(c)
				}
				tc.agent(b, c)
			})
			ra := itRunAgent(t, cfg, nil)
			var last string
			require.Eventually(t, func() bool {
				last = ra.pub.Stats().LastError
				return last != ""
			}, 15*time.Second, 20*time.Millisecond)
			t.Logf("LastError: %s", last)
			for _, want := range tc.expect {
				want = strings.ReplaceAll(want, "OTHERCA", b.pki.OtherCA)
				want = strings.ReplaceAll(want, "EXPIRED", b.pki.ExpiredCert)
				require.Contains(t, last, want)
			}
			require.False(t, ra.Stats().Connected)
			require.NoError(t, ra.stop())
		})
	}
}

// TestIntegrationClientCertRotation starts the agent with an expired client certificate
// (mTLS broker), then replaces the certificate and key files in place: the next connection
// attempt presents the new pair, without a restart, and blocks flow.
func TestIntegrationClientCertRotation(t *testing.T) {
	bed := agenttest.New(t)
	b := startSecured(t, "mtls")
	v := startVerifier(t, bed, b.url, verifierOptions{TLS: b.vTLS, NoResend: true})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key")
	copyTo := func(from, to string) {
		data, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, data, 0o600))
	}
	copyTo(b.pki.ExpiredCert, certFile)
	copyTo(b.pki.ExpiredKey, keyFile)
	ra := itRunAgent(t, itConfig(t, bed, b.url, func(c *config.Config) {
		c.MQTT.CAFile, c.MQTT.CertFile, c.MQTT.KeyFile = b.pki.CAFile, certFile, keyFile
	}), nil)
	require.Eventually(t, func() bool { return strings.Contains(ra.pub.Stats().LastError, "expired at") }, 15*time.Second, 20*time.Millisecond)

	// Rotate: key first, then the certificate (a reader in between keeps the old pair).
	copyTo(b.pki.ClientKey, keyFile)
	copyTo(b.pki.ClientCert, certFile)
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(certFile, later, later))
	require.Eventually(t, func() bool { return v.Summary().Readings >= 20 }, 45*time.Second, 50*time.Millisecond,
		"uplink: %+v", ra.pub.Stats())
	require.True(t, ra.Stats().Connected)
	require.NoError(t, ra.stop())
	s := v.stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
}
