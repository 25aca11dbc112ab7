package opcua

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopcua/opcua"
)

// Client certificate parameters.
const (
	CertValidity   = 2 * 365 * 24 * time.Hour // stated validity of a generated client certificate
	CertWarnBefore = 30 * 24 * time.Hour      // warn this long before the certificate expires
	certKeyBits    = 2048
)

// ApplicationURI is the client's OPC UA application URI, one per gateway; generated
// certificates carry it as their URI SAN (servers compare the two).
func ApplicationURI(site, gateway string) string { return "urn:mrv-agent:" + site + ":" + gateway }

// Identity is the client's application certificate and key.
type Identity struct {
	CertDER  []byte
	Key      *rsa.PrivateKey
	URI      string // the certificate's first URI SAN
	NotAfter time.Time
}

// Thumbprint returns the lowercase hex SHA-256 of the DER certificate.
func (id *Identity) Thumbprint() string { return Thumbprint(id.CertDER) }

// Thumbprint returns the lowercase hex SHA-256 of a DER certificate: how this agent names
// certificates in errors, in the trust directory and on the command line.
func Thumbprint(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// LoadOrCreateIdentity loads the certificate and key at certFile and keyFile, or, when
// neither exists, generates them (RSA-2048, self-signed, URI SAN uri, valid CertValidity
// from now) and writes them crash-safely, the key as PKCS#1 PEM with mode 0600. created
// reports whether it did. A pair of which only one file exists, a key readable by group
// or others, or a key that does not match the certificate is an error: nothing is
// overwritten except by RenewIdentity.
func LoadOrCreateIdentity(certFile, keyFile, uri string, now time.Time) (id *Identity, created bool, err error) {
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		id, err := RenewIdentity(certFile, keyFile, uri, now)
		return id, err == nil, err
	case errors.Is(cerr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("client certificate %s is missing but its key %s exists: run `mrv-agent opcua renew-cert`", certFile, keyFile)
	case errors.Is(kerr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("client key %s is missing but its certificate %s exists: run `mrv-agent opcua renew-cert`", keyFile, certFile)
	}
	id, err = LoadIdentity(certFile, keyFile)
	return id, false, err
}

// LoadIdentity reads a certificate (PEM or DER) and its RSA key (PEM, PKCS#1 or PKCS#8).
func LoadIdentity(certFile, keyFile string) (*Identity, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read client certificate: %w", err)
	}
	der, err := certDER(cb)
	if err != nil {
		return nil, fmt.Errorf("client certificate %s: %w", certFile, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("client certificate %s: %w", certFile, err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		return nil, fmt.Errorf("client key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("client key %s has mode %04o: group and others must have no access (chmod 600)", keyFile, fi.Mode().Perm())
	}
	key, err := readRSAKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("client key %s: %w", keyFile, err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("client key %s does not match certificate %s: run `mrv-agent opcua renew-cert`", keyFile, certFile)
	}
	id := &Identity{CertDER: der, Key: key, NotAfter: cert.NotAfter}
	if len(cert.URIs) > 0 {
		id.URI = cert.URIs[0].String()
	}
	return id, nil
}

// readRSAKey reads an RSA private key from PEM (PKCS#1 or PKCS#8).
func readRSAKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("not an RSA private key (PKCS#1 or PKCS#8 PEM)")
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an RSA key", k)
	}
	return rk, nil
}

// certDER returns the DER of the first CERTIFICATE block of a PEM file, or the bytes
// themselves when they are not PEM.
func certDER(b []byte) ([]byte, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", blk.Type)
		}
		return blk.Bytes, nil
	}
	if len(b) == 0 {
		return nil, errors.New("empty file")
	}
	return b, nil
}

// RenewIdentity generates a new certificate and key and replaces the files: key first,
// then certificate, each written to a temporary file, fsynced and renamed, then the
// directory fsynced. A crash between the two renames leaves a pair that LoadIdentity
// refuses as mismatched, never a half-written file.
func RenewIdentity(certFile, keyFile, uri string, now time.Time) (*Identity, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("application uri %q is not a URI", uri)
	}
	key, err := rsa.GenerateKey(rand.Reader, certKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "mrv-agent", Organization: []string{"mrv-agent"}},
		NotBefore:    now.Add(-time.Hour).UTC(), // tolerate a server clock slightly behind
		NotAfter:     now.Add(CertValidity).UTC(),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment |
			x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	if host != "" {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create client certificate: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write client key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("write client certificate: %w", err)
	}
	return &Identity{CertDER: der, Key: key, URI: uri, NotAfter: tmpl.NotAfter}, nil
}

// writeFileAtomic writes data to path through a temporary file in the same directory
// (created 0700 if missing): write, fsync, rename, fsync the directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// UntrustedError is a server certificate that is not in the trust directory.
type UntrustedError struct {
	Endpoint   string
	Thumbprint string // lowercase hex SHA-256 of the DER certificate
	Subject    string
	TrustDir   string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("server certificate of %s is not trusted (subject %q, sha256 thumbprint %s, not in %s); "+
		"if it is the right server, trust it with `mrv-agent opcua trust --config FILE %s`",
		e.Endpoint, e.Subject, e.Thumbprint, e.TrustDir, e.Thumbprint)
}

// RejectedDir is where refused server certificates are kept (beside the trust directory)
// so that `mrv-agent opcua trust` can trust one by thumbprint without a connection.
func RejectedDir(trustDir string) string { return filepath.Join(filepath.Dir(trustDir), "rejected") }

// TrustedThumbprints returns the thumbprints of the certificates (DER or PEM, any file
// name) in dir. A missing directory is empty; an unreadable file is skipped.
func TrustedThumbprints(dir string) (map[string]bool, error) {
	out := map[string]bool{}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read trust dir: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		der, err := certDER(b)
		if err != nil {
			continue
		}
		out[Thumbprint(der)] = true
	}
	return out, nil
}

// CheckTrust returns nil if der is in trustDir, else an *UntrustedError (and, best
// effort, keeps der in RejectedDir for `mrv-agent opcua trust`).
func CheckTrust(endpoint, trustDir string, der []byte) error {
	if len(der) == 0 {
		return fmt.Errorf("server %s sent no certificate", endpoint)
	}
	trusted, err := TrustedThumbprints(trustDir)
	if err != nil {
		return err
	}
	tp := Thumbprint(der)
	if trusted[tp] {
		return nil
	}
	subject := "?"
	if c, err := x509.ParseCertificate(der); err == nil {
		subject = c.Subject.String()
	}
	_ = writeFileAtomic(filepath.Join(RejectedDir(trustDir), tp+".der"), der, 0o644)
	return &UntrustedError{Endpoint: endpoint, Thumbprint: tp, Subject: subject, TrustDir: trustDir}
}

// Trust stores der in trustDir as <thumbprint>.der and returns the thumbprint.
func Trust(trustDir string, der []byte) (string, error) {
	if _, err := x509.ParseCertificate(der); err != nil {
		return "", fmt.Errorf("not a certificate: %w", err)
	}
	tp := Thumbprint(der)
	if err := writeFileAtomic(filepath.Join(trustDir, tp+".der"), der, 0o644); err != nil {
		return "", fmt.Errorf("trust certificate: %w", err)
	}
	return tp, nil
}

// Rejected returns the DER of the refused certificate whose thumbprint is tp (or starts
// with it, if unambiguous), from RejectedDir(trustDir).
func Rejected(trustDir, tp string) ([]byte, error) {
	dir := RejectedDir(trustDir)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var found []byte
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		der, err := certDER(b)
		if err == nil && strings.HasPrefix(Thumbprint(der), strings.ToLower(tp)) {
			if !bytes.Equal(der, found) {
				n++
			}
			found = der
		}
	}
	switch n {
	case 0:
		return nil, fmt.Errorf("no refused certificate with thumbprint %s in %s", tp, dir)
	case 1:
		return found, nil
	}
	return nil, fmt.Errorf("thumbprint prefix %s is ambiguous in %s", tp, dir)
}

// ServerCertificates asks the server at endpoint for its endpoints and returns the
// distinct certificates they carry, by thumbprint (for `mrv-agent opcua trust`).
func ServerCertificates(ctx context.Context, endpoint string) (map[string][]byte, error) {
	eps, err := opcua.GetEndpoints(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("opcua %s: get endpoints: %w", endpoint, err)
	}
	out := map[string][]byte{}
	for _, ep := range eps {
		if len(ep.ServerCertificate) > 0 {
			out[Thumbprint(ep.ServerCertificate)] = ep.ServerCertificate
		}
	}
	return out, nil
}
