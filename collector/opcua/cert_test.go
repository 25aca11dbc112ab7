package opcua_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/collector/opcua"
	"github.com/mrv-agent/mrv-agent/sim"
)

func TestClientCertificateIsStableAndRenewable(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "opcua", "client.crt"), filepath.Join(dir, "opcua", "client.key")
	uri := opcua.ApplicationURI("plant-a", "gw1")
	now := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)

	id1, created, err := opcua.LoadOrCreateIdentity(cert, key, uri, now)
	require.NoError(t, err)
	require.True(t, created)
	fi, err := os.Stat(key)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	c, err := x509.ParseCertificate(id1.CertDER)
	require.NoError(t, err)
	require.Equal(t, "urn:mrv-agent:plant-a:gw1", c.URIs[0].String())
	require.Equal(t, 2048, id1.Key.N.BitLen())
	require.Equal(t, now.Add(opcua.CertValidity), c.NotAfter)
	keyPEM, err := os.ReadFile(key)
	require.NoError(t, err)
	require.Contains(t, string(keyPEM), "BEGIN RSA PRIVATE KEY", "PKCS#1: what gopcua's PrivateKeyFile reads")

	// A restart reuses the pair, byte for byte.
	id2, created, err := opcua.LoadOrCreateIdentity(cert, key, uri, now.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, id1.CertDER, id2.CertDER)
	require.True(t, id1.Key.Equal(id2.Key))

	// renew-cert replaces both; the next start loads the new pair.
	id3, err := opcua.RenewIdentity(cert, key, uri, now.Add(700*24*time.Hour))
	require.NoError(t, err)
	require.NotEqual(t, id1.Thumbprint(), id3.Thumbprint())
	id4, _, err := opcua.LoadOrCreateIdentity(cert, key, uri, now)
	require.NoError(t, err)
	require.Equal(t, id3.CertDER, id4.CertDER)

	// A key readable by others is refused; so is half a pair.
	require.NoError(t, os.Chmod(key, 0o644))
	_, _, err = opcua.LoadOrCreateIdentity(cert, key, uri, now)
	require.ErrorContains(t, err, "chmod 600")
	require.NoError(t, os.Chmod(key, 0o600))
	require.NoError(t, os.Remove(cert))
	_, _, err = opcua.LoadOrCreateIdentity(cert, key, uri, now)
	require.ErrorContains(t, err, "renew-cert")
	entries, err := os.ReadDir(filepath.Dir(cert))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files are left behind")
}

// TestUntrustedServerCertificate: the gopcua server advertises a Basic256Sha256 endpoint
// with its certificate (it cannot complete that handshake at v0.8.0, but the trust check
// comes first); the source refuses it and names the thumbprint and the command.
func TestUntrustedServerCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srvID, err := opcua.RenewIdentity(filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key"), "urn:sim:server", time.Now())
	require.NoError(t, err)
	srv, err := sim.StartOPCUA("127.0.0.1", sim.OPCUAOptions{Tick: -1, Security: "Basic256Sha256", Certificate: srvID.CertDER, Key: srvID.Key})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Close()) })

	cfg := kilnSource(srv.Endpoint(), "subscribe", time.Second)
	cfg.OPCUA.Security, cfg.OPCUA.Mode = "basic256sha256", "signandencrypt"
	cfg.OPCUA.CertFile, cfg.OPCUA.KeyFile = filepath.Join(dir, "opcua", "client.crt"), filepath.Join(dir, "opcua", "client.key")
	cfg.OPCUA.TrustDir = filepath.Join(dir, "opcua", "trusted")
	src, err := opcua.New(cfg, nil, opcua.Options{Site: "plant-a", Gateway: "gw1"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, src.Close()) })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = src.Read(ctx)
	var ue *opcua.UntrustedError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, srvID.Thumbprint(), ue.Thumbprint)
	require.ErrorContains(t, err, srvID.Thumbprint())
	require.ErrorContains(t, err, "mrv-agent opcua trust")

	// The refused certificate is kept, so trusting by thumbprint needs no connection.
	der, err := opcua.Rejected(cfg.OPCUA.TrustDir, ue.Thumbprint[:12])
	require.NoError(t, err)
	tp, err := opcua.Trust(cfg.OPCUA.TrustDir, der)
	require.NoError(t, err)
	require.Equal(t, ue.Thumbprint, tp)
	require.NoError(t, opcua.CheckTrust("x", cfg.OPCUA.TrustDir, srvID.CertDER))
}
