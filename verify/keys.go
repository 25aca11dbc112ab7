package verify

import (
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mrv-agent/mrv-agent/seal"
)

// maxKeysFile bounds what LoadKeysFile reads.
const maxKeysFile = 1 << 20

// LoadKeysFile reads a keys file: one or more PKIX PEM "PUBLIC KEY" blocks of Ed25519 keys
// (text between blocks is ignored, so a file may carry comments). Every block must be such a
// key, and there must be at least one.
func LoadKeysFile(path string) ([]ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keys file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	if len(data) > maxKeysFile {
		return nil, fmt.Errorf("keys file %s: more than %d bytes", path, maxKeysFile)
	}
	return ParseKeys(data)
}

// ParseKeys parses one or more PKIX PEM Ed25519 public keys.
func ParseKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for n := 1; ; n++ {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		k, err := seal.ParsePublicKeyPEM(pem.EncodeToMemory(blk))
		if err != nil {
			return nil, fmt.Errorf("keys: block %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("keys: no PEM \"PUBLIC KEY\" block")
	}
	return keys, nil
}
