package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CA is a throw-away certificate authority for TLS tests (ECDSA P-256), generated with
// crypto/x509 so that no openssl is needed.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// NewCA generates a self-signed CA valid from an hour ago for a day.
func NewCA(commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse ca certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// CertOptions describe a leaf certificate issued by a CA.
type CertOptions struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Server     bool // extended key usage serverAuth
	Client     bool // extended key usage clientAuth
	// NotBefore and NotAfter default to an hour ago and a day from now.
	NotBefore, NotAfter time.Time
}

// Issue generates a key and a certificate signed by the CA; both are PEM (the key PKCS#8).
func (ca *CA) Issue(o CertOptions) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	now := time.Now()
	if o.NotBefore.IsZero() {
		o.NotBefore = now.Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = now.Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: o.CommonName},
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if o.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if o.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// PKI is a test CA with the files a TLS test needs, all in one directory.
type PKI struct {
	CA      *CA
	CAFile  string // the CA certificate
	OtherCA string // a CA certificate that signed none of the files here (a wrong ca_file)

	ServerCert, ServerKey string // SAN 127.0.0.1, ::1 and localhost
	ClientCert, ClientKey string // valid client certificate
	// ExpiredCert and ExpiredKey are a client certificate that expired an hour ago.
	ExpiredCert, ExpiredKey string
}

// NewPKI generates a CA, a server certificate for loopback, a valid and an expired client
// certificate and an unrelated CA, and writes them into dir (keys with mode 0600).
func NewPKI(dir string) (*PKI, error) {
	ca, err := NewCA("mrv test ca")
	if err != nil {
		return nil, err
	}
	other, err := NewCA("mrv unrelated ca")
	if err != nil {
		return nil, err
	}
	p := &PKI{CA: ca, CAFile: filepath.Join(dir, "ca.crt"), OtherCA: filepath.Join(dir, "other-ca.crt")}
	if err := writeFile(p.CAFile, ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	if err := writeFile(p.OtherCA, other.CertPEM, 0o644); err != nil {
		return nil, err
	}
	now := time.Now()
	for _, c := range []struct {
		name      string
		opts      CertOptions
		cert, key *string
	}{
		{"server", CertOptions{CommonName: "localhost", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, Server: true}, &p.ServerCert, &p.ServerKey},
		{"client", CertOptions{CommonName: "mrv-test-agent", Client: true}, &p.ClientCert, &p.ClientKey},
		{"expired", CertOptions{CommonName: "mrv-test-agent", Client: true, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}, &p.ExpiredCert, &p.ExpiredKey},
	} {
		certPEM, keyPEM, err := ca.Issue(c.opts)
		if err != nil {
			return nil, fmt.Errorf("%s certificate: %w", c.name, err)
		}
		*c.cert, *c.key = filepath.Join(dir, c.name+".crt"), filepath.Join(dir, c.name+".key")
		if err := writeFile(*c.cert, certPEM, 0o644); err != nil {
			return nil, err
		}
		if err := writeFile(*c.key, keyPEM, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// MosquittoTLS returns the listener lines for a TLS listener with this PKI's server
// certificate; requireCert adds mTLS (require_certificate true).
func (p *PKI) MosquittoTLS(requireCert bool) []string {
	lines := []string{"cafile " + p.CAFile, "certfile " + p.ServerCert, "keyfile " + p.ServerKey}
	if requireCert {
		lines = append(lines, "require_certificate true")
	}
	return lines
}

// WritePasswordFile writes a Mosquitto 2.x password file (the "$7$" PBKDF2-SHA512 format
// that mosquitto_passwd writes) with one user, so tests need no mosquitto_passwd.
func WritePasswordFile(path string, users map[string]string) error {
	var b strings.Builder
	for user, pass := range users {
		salt := make([]byte, 12)
		if _, err := rand.Read(salt); err != nil {
			return err
		}
		const iterations = 101
		hash, err := pbkdf2.Key(sha512.New, pass, salt, iterations, sha512.Size)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:$7$%d$%s$%s\n", user, iterations,
			base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(hash))
	}
	return writeFile(path, []byte(b.String()), 0o600)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
