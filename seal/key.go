package seal

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/veraison/go-cose"
)

// Key is the gateway's Ed25519 signing key with its kid (SHA-256 of the public key's PKIX
// DER, ARCHITECTURE.md "Streams, records, blocks").
type Key struct {
	priv   ed25519.PrivateKey
	Public ed25519.PublicKey
	Kid    [32]byte
	signer cose.Signer
}

// GenerateKey returns a new random key.
func GenerateKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return newKey(priv)
}

func newKey(priv ed25519.PrivateKey) (*Key, error) {
	signer, err := cose.NewSigner(cose.AlgorithmEdDSA, priv)
	if err != nil {
		return nil, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Key{priv: priv, Public: pub, Kid: KeyID(pub), signer: signer}, nil
}

// KeyID is SHA-256 over the PKIX DER of pub.
func KeyID(pub ed25519.PublicKey) [32]byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		// Only a public key of the wrong length fails here; callers check lengths first.
		return [32]byte{}
	}
	return sha256.Sum256(der)
}

// KidString is the lowercase hex of a kid, as logs and the status page show it.
func KidString(kid [32]byte) string { return hex.EncodeToString(kid[:]) }

// LoadKey reads a PKCS#8 PEM Ed25519 private key. It refuses a file that any group or other
// permission bit opens (mode & 0077 != 0), naming the file and its mode.
func LoadKey(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: mode %04o allows group or other access; run chmod 600 %s", path, m, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key file %s: want a PEM \"PRIVATE KEY\" (PKCS#8) block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key file %s: %T is not an Ed25519 key", path, k)
	}
	return newKey(priv)
}

// LoadPublicKey reads a PKIX PEM Ed25519 public key ("PUBLIC KEY" block).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return ParsePublicKeyPEM(data)
}

// ParsePublicKeyPEM parses a PKIX PEM Ed25519 public key.
func ParsePublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("public key: want a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key: %T is not an Ed25519 key", k)
	}
	return pub, nil
}

// PublicKeyPEM encodes pub as PKIX PEM.
func PublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// WriteKey writes k's public key as PKIX PEM to path+".pub" (mode 0644), then k as PKCS#8
// PEM (mode 0600) to path, each crash-safely: temp file, fsync, rename, fsync directory.
// It refuses to overwrite an existing private key.
func WriteKey(path string, k *Key) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("key file %s already exists; refusing to overwrite it", path)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return err
	}
	pub, err := PublicKeyPEM(k.Public)
	if err != nil {
		return err
	}
	// The public key first: whoever sees the private key file (a running agent picking up
	// a next key) finds its public key already there.
	if err := WriteFileAtomic(path+".pub", pub, 0o644); err != nil {
		return err
	}
	return WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// WriteFileAtomic writes data to path so that after a crash the file is either the old one
// or the complete new one: a temp file in the same directory, fsync, rename, fsync dir.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync dir: %w", path, err)
	}
	return nil
}
