package uplink

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/sim"
)

// tlsServer accepts TLS handshakes with the PKI's server certificate, optionally requiring
// a client certificate signed by the CA, and records the serial of each client certificate.
type tlsServer struct {
	ln      net.Listener
	mu      sync.Mutex
	serials []string
	wg      sync.WaitGroup
}

func startTLSServer(t *testing.T, pki *sim.PKI, requireClient bool) *tlsServer {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(pki.CA.Cert)
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	if requireClient {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	s := &tlsServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err == nil {
				if pc := tc.ConnectionState().PeerCertificates; len(pc) > 0 {
					s.mu.Lock()
					s.serials = append(s.serials, pc[0].SerialNumber.String())
					s.mu.Unlock()
				}
				_, _ = tc.Write([]byte("ok"))
			}
			_ = tc.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *tlsServer) lastSerial() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.serials) == 0 {
		return ""
	}
	return s.serials[len(s.serials)-1]
}

// handshake dials the server with cfg and reads the server's "ok" (with TLS 1.3 a rejected
// client certificate only shows on the first read).
func handshake(addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil {
		return err
	}
	return nil
}

func serialOf(t *testing.T, certFile string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, certFile[:len(certFile)-len(".crt")]+".key")
	require.NoError(t, err)
	return pair.Leaf.SerialNumber.String()
}

func TestTLSConfigVerifiesServer(t *testing.T) {
	pki, err := sim.NewPKI(t.TempDir())
	require.NoError(t, err)
	srv := startTLSServer(t, pki, false)

	good, err := TLSConfig(pki.CAFile, "", "", false, nil)
	require.NoError(t, err)
	require.NoError(t, handshake(srv.ln.Addr().String(), good))

	wrong, err := TLSConfig(pki.OtherCA, "", "", false, nil)
	require.NoError(t, err)
	err = handshake(srv.ln.Addr().String(), wrong)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)
	explained := explainConnectError(fmt.Errorf("network Error : tls handshake: %w", err), "127.0.0.1:1", true, pki.OtherCA, "")
	require.ErrorContains(t, explained, "not signed by ca_file "+pki.OtherCA)
	require.ErrorContains(t, explained, "x509: certificate signed by unknown authority")
	require.ErrorAs(t, explained, &unknown, "the cause stays inspectable")

	var logBuf bytes.Buffer
	insecure, err := TLSConfig(pki.OtherCA, "", "", true, slog.New(slog.NewTextHandler(&logBuf, nil)))
	require.NoError(t, err)
	require.NoError(t, handshake(srv.ln.Addr().String(), insecure))
	require.Contains(t, logBuf.String(), "insecure_skip_verify is on")
}

func TestTLSConfigClientCertReloads(t *testing.T) {
	dir := t.TempDir()
	pki, err := sim.NewPKI(dir)
	require.NoError(t, err)
	srv := startTLSServer(t, pki, true)

	// The agent's own copy of the pair, rotated in place below.
	certFile, keyFile := filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key")
	copyFile(t, pki.ClientCert, certFile)
	copyFile(t, pki.ClientKey, keyFile)
	var logBuf bytes.Buffer
	cfg, err := TLSConfig(pki.CAFile, certFile, keyFile, false, slog.New(slog.NewTextHandler(&logBuf, nil)))
	require.NoError(t, err)
	require.NoError(t, handshake(srv.ln.Addr().String(), cfg))
	require.Equal(t, serialOf(t, pki.ClientCert), srv.lastSerial())

	// Rotate: a new pair from the same CA. The next handshake presents it.
	certPEM, keyPEM, err := pki.CA.Issue(sim.CertOptions{CommonName: "mrv-test-agent", Client: true})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o644))
	bumpMtime(t, certFile, keyFile)
	require.NoError(t, handshake(srv.ln.Addr().String(), cfg))
	require.Equal(t, serialOf(t, certFile), srv.lastSerial())
	require.NotEqual(t, serialOf(t, pki.ClientCert), srv.lastSerial())

	// A half-written rotation (key not matching) keeps the previous pair, with one warning.
	rotated := srv.lastSerial()
	_, otherKey, err := pki.CA.Issue(sim.CertOptions{CommonName: "x", Client: true})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, otherKey, 0o600))
	bumpMtime(t, keyFile)
	require.NoError(t, handshake(srv.ln.Addr().String(), cfg))
	require.NoError(t, handshake(srv.ln.Addr().String(), cfg))
	require.Equal(t, rotated, srv.lastSerial())
	require.Equal(t, 1, bytes.Count(logBuf.Bytes(), []byte("cannot be loaded; keeping the previous one")), logBuf.String())
}

func TestTLSConfigExpiredClientCert(t *testing.T) {
	pki, err := sim.NewPKI(t.TempDir())
	require.NoError(t, err)
	srv := startTLSServer(t, pki, true)
	cfg, err := TLSConfig(pki.CAFile, pki.ExpiredCert, pki.ExpiredKey, false, nil)
	require.NoError(t, err, "an expired pair loads (it may be replaced on disk later)")
	err = handshake(srv.ln.Addr().String(), cfg)
	require.ErrorContains(t, err, "mqtt client certificate "+pki.ExpiredCert+" expired at")

	// No client certificate at all, where the server requires one.
	none, err := TLSConfig(pki.CAFile, "", "", false, nil)
	require.NoError(t, err)
	err = handshake(srv.ln.Addr().String(), none)
	require.Error(t, err)
	require.ErrorContains(t, explainConnectError(err, "b:1", true, pki.CAFile, ""), "requires a client certificate")
}

func TestTLSConfigRejects(t *testing.T) {
	dir := t.TempDir()
	pki, err := sim.NewPKI(dir)
	require.NoError(t, err)
	notPEM := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("junk"), 0o644))
	for _, tc := range []struct {
		name                   string
		ca, cert, key, wantErr string
	}{
		{"missing ca", filepath.Join(dir, "nope.crt"), "", "", "mqtt ca_file"},
		{"ca not pem", notPEM, "", "", "no PEM certificate"},
		{"cert without key", "", pki.ClientCert, "", "given together"},
		{"missing key", "", pki.ClientCert, filepath.Join(dir, "nope.key"), "mqtt key_file"},
		{"mismatched pair", "", pki.ClientCert, pki.ServerKey, "mqtt client certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TLSConfig(tc.ca, tc.cert, tc.key, false, nil)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestExplainConnectError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{packets.ErrorRefusedNotAuthorised, "not authorized (CONNACK 5"},
		{packets.ErrorRefusedBadUsernameOrPassword, "bad user name or password (CONNACK 4"},
		{packets.ErrorRefusedIDRejected, "client id (CONNACK 2"},
		{errors.New("network Error : remote error: tls: expired certificate"), "rejected the client certificate c.crt (expired certificate)"},
		{errors.New("dial tcp: connection refused"), "dial tcp: connection refused"},
		{errors.New("network Error : write tcp 1->2: write: connection reset by peer"), "closed the connection after the TLS handshake (does it require a client certificate?"},
	} {
		got := explainConnectError(tc.err, "b:1", true, "", "c.crt")
		require.ErrorContains(t, got, tc.want)
		require.ErrorIs(t, got, tc.err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, 0o600))
}

var mtimeBumps int

// bumpMtime moves the files' modification time forward, so a rewrite within the file
// system's timestamp granularity still counts as a change.
func bumpMtime(t *testing.T, files ...string) {
	t.Helper()
	mtimeBumps++
	later := time.Now().Add(time.Duration(mtimeBumps) * time.Minute)
	for _, f := range files {
		require.NoError(t, os.Chtimes(f, later, later))
	}
}
