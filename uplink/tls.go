package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TLSConfig builds the client TLS configuration of an mqtts:// uplink. The broker is
// verified against the certificates in caFile (PEM), or against the system roots when
// caFile is empty. With certFile and keyFile (PEM, given together) the client presents a
// certificate (mTLS); the pair is re-read at the next handshake whenever either file's
// modification time or size changed, so certificates rotate without a restart (a pair
// that fails to load keeps the previous one in use, with a warning). insecure disables the
// server verification; it is an explicit opt-in and logged as a warning.
func TLSConfig(caFile, certFile, keyFile string, insecure bool, log *slog.Logger) (*tls.Config, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("mqtt ca_file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if insecure {
		log.Warn("mqtt insecure_skip_verify is on: the broker's certificate is NOT verified; anyone on the path can read and alter the uplink")
		cfg.InsecureSkipVerify = true // an explicit, logged opt-in (mqtt.insecure_skip_verify)
	}
	switch {
	case certFile == "" && keyFile == "":
	case certFile == "" || keyFile == "":
		return nil, errors.New("mqtt cert_file and key_file must be given together")
	default:
		r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
		if err := r.reload(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = r.get
	}
	return cfg, nil
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// certReloader holds the client certificate and re-reads it when its files change.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu         sync.Mutex
	cert       *tls.Certificate
	certStamp  fileStamp
	keyStamp   fileStamp
	failedCert fileStamp // the stamps of a pair that failed to load, warned about once
	failedKey  fileStamp
}

// reload reads the pair if a file changed since the last successful load.
func (r *certReloader) reload() error {
	cs, err := stampOf(r.certFile)
	if err != nil {
		return fmt.Errorf("mqtt cert_file: %w", err)
	}
	ks, err := stampOf(r.keyFile)
	if err != nil {
		return fmt.Errorf("mqtt key_file: %w", err)
	}
	if r.cert != nil && cs == r.certStamp && ks == r.keyStamp {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("mqtt client certificate %s / key %s: %w", r.certFile, r.keyFile, err)
	}
	reloaded := r.cert != nil
	r.cert, r.certStamp, r.keyStamp = &pair, cs, ks
	if leaf := pair.Leaf; leaf != nil {
		r.log.Info("mqtt client certificate loaded", "cert_file", r.certFile, "subject", leaf.Subject.String(),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "reloaded", reloaded)
		if r.now().After(leaf.NotAfter) {
			r.log.Warn("mqtt client certificate has expired", "cert_file", r.certFile, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// get is tls.Config.GetClientCertificate: the current pair, re-read if its files changed.
// An expired (or not yet valid) certificate fails the handshake here with an error naming
// the file, instead of a broker alert that does not say which certificate.
func (r *certReloader) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		cs, _ := stampOf(r.certFile)
		ks, _ := stampOf(r.keyFile)
		if cs != r.failedCert || ks != r.failedKey {
			r.failedCert, r.failedKey = cs, ks
			r.log.Warn("mqtt client certificate changed but cannot be loaded; keeping the previous one", "err", err)
		}
	}
	if leaf := r.cert.Leaf; leaf != nil {
		now := r.now()
		if now.After(leaf.NotAfter) {
			return nil, fmt.Errorf("mqtt client certificate %s expired at %s", r.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		if now.Before(leaf.NotBefore) {
			return nil, fmt.Errorf("mqtt client certificate %s is not valid before %s", r.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	return r.cert, nil
}

// explainConnectError names the likely cause of a failed connect: an untrusted or
// mismatched broker certificate, a client certificate the broker rejected, or a CONNACK
// refusal. Other errors are returned as they are.
func explainConnectError(err error, broker string, overTLS bool, caFile, certFile string) error {
	trust := "the system roots"
	if caFile != "" {
		trust = "ca_file " + caFile
	}
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("broker %s presented a certificate not signed by %s: %w", broker, trust, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("broker %s presented a certificate for another host name (check mqtt.url): %w", broker, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("broker %s presented an invalid certificate (checked against %s): %w", broker, trust, err)
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return fmt.Errorf("broker %s refused the connection: not authorized (CONNACK 5; check mqtt.username, mqtt.password_file and the broker's ACL): %w", broker, err)
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return fmt.Errorf("broker %s refused the connection: bad user name or password (CONNACK 4; check mqtt.username and mqtt.password_file): %w", broker, err)
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return fmt.Errorf("broker %s refused the client id (CONNACK 2; check mqtt.client_id): %w", broker, err)
	}
	msg := err.Error()
	if i := strings.Index(msg, "remote error: tls: "); i >= 0 {
		alert := msg[i+len("remote error: tls: "):]
		switch {
		case strings.Contains(alert, "certificate required"):
			return fmt.Errorf("broker %s requires a client certificate (set mqtt.cert_file and mqtt.key_file): %w", broker, err)
		case strings.Contains(alert, "certificate"), strings.Contains(alert, "unknown ca"), strings.Contains(alert, "unknown certificate authority"):
			who := "the client certificate"
			if certFile != "" {
				who += " " + certFile
			}
			return fmt.Errorf("broker %s rejected %s (%s): %w", broker, who, alert, err)
		}
	}
	if overTLS && (strings.Contains(msg, "connection reset by peer") || strings.Contains(msg, "broken pipe") || strings.HasSuffix(msg, "EOF")) {
		// With TLS 1.3 a broker checks the client certificate after the client finished its
		// handshake; its alert is often lost in the reset that follows.
		return fmt.Errorf("broker %s closed the connection after the TLS handshake (does it require a client certificate? check mqtt.cert_file and mqtt.key_file): %w", broker, err)
	}
	return err
}
