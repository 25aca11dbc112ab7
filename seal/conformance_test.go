package seal_test

// A second implementation of the envelope format for conformance: it reads the worked test
// vector with fxamacker/cbor's generic decoding and the standard library only (no go-cose,
// nothing of this project), rebuilds the Sig_structure by hand and checks the signature with
// crypto/ed25519 and with the openssl command line.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/require"
)

type vectorFile struct {
	Seed, PublicKey, PublicKeyDER, Kid, Protected, Payload, SigStructure, Signature, Envelope, ChainHash []byte
}

func loadVector(t *testing.T) (vectorFile, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vector1.json"))
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, json.Unmarshal(data, &m))
	dec := func(k string) []byte {
		b, err := hex.DecodeString(m[k])
		require.NoError(t, err, k)
		require.NotEmpty(t, b, k)
		return b
	}
	v := vectorFile{
		Seed: dec("seed"), PublicKey: dec("public_key"), PublicKeyDER: dec("public_key_der"), Kid: dec("kid"),
		Protected: dec("protected"), Payload: dec("payload"), SigStructure: dec("sig_structure"),
		Signature: dec("signature"), Envelope: dec("envelope"), ChainHash: dec("chain_hash"),
	}
	pemKey, err := os.ReadFile(filepath.Join("testdata", "vector1.pub.pem"))
	require.NoError(t, err)
	return v, pemKey
}

// TestConformanceGenericCBOR decodes the vector's envelope into generic CBOR values, checks
// every header and payload field against docs/record-format.md, rebuilds the Sig_structure
// and verifies the signature with crypto/ed25519.
func TestConformanceGenericCBOR(t *testing.T) {
	v, pemKey := loadVector(t)
	dm, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, IndefLength: cbor.IndefLengthForbidden}.DecMode()
	require.NoError(t, err)

	// Keys: the seed gives the public key; the kid is SHA-256 of its PKIX DER; the PEM file
	// holds the same DER.
	priv := ed25519.NewKeyFromSeed(v.Seed)
	require.Equal(t, v.PublicKey, []byte(priv.Public().(ed25519.PublicKey)))
	der, err := x509.MarshalPKIXPublicKey(ed25519.PublicKey(v.PublicKey))
	require.NoError(t, err)
	require.Equal(t, v.PublicKeyDER, der)
	kid := sha256.Sum256(der)
	require.Equal(t, v.Kid, kid[:])
	blk, _ := pem.Decode(pemKey)
	require.NotNil(t, blk)
	require.Equal(t, "PUBLIC KEY", blk.Type)
	require.Equal(t, der, blk.Bytes)

	// The envelope: tag 18 around [protected bstr, {} , payload bstr, signature bstr].
	var env any
	require.NoError(t, dm.Unmarshal(v.Envelope, &env))
	tag, ok := env.(cbor.Tag)
	require.True(t, ok, "envelope is a tag, got %T", env)
	require.Equal(t, uint64(18), tag.Number)
	arr, ok := tag.Content.([]any)
	require.True(t, ok)
	require.Len(t, arr, 4)
	protected, payload, sig := arr[0].([]byte), arr[2].([]byte), arr[3].([]byte)
	require.Equal(t, map[any]any{}, arr[1], "empty unprotected header")
	require.Equal(t, v.Protected, protected)
	require.Equal(t, v.Payload, payload)
	require.Equal(t, v.Signature, sig)
	require.Len(t, sig, ed25519.SignatureSize)
	require.Equal(t, []byte{0xd2, 0x84}, v.Envelope[:2], "tag 18, array of 4")

	// The protected header: {1: -8, 3: content type, 4: kid}, deterministically encoded.
	var hdr map[any]any
	require.NoError(t, dm.Unmarshal(protected, &hdr))
	require.Equal(t, map[any]any{
		uint64(1): int64(-8),
		uint64(3): "application/vnd.mrv.block+cbor;v=1",
		uint64(4): kid[:],
	}, hdr)
	require.Equal(t, []byte{0xa3, 0x01, 0x27, 0x03}, protected[:4], "sorted keys, shortest forms")

	// The Sig_structure, built by hand: ["Signature1", protected, h'', payload].
	tbs := []byte{0x84, 0x6a}
	tbs = append(tbs, "Signature1"...)
	tbs = append(tbs, bstrHead(len(protected))...)
	tbs = append(tbs, protected...)
	tbs = append(tbs, 0x40)
	tbs = append(tbs, bstrHead(len(payload))...)
	tbs = append(tbs, payload...)
	require.Equal(t, v.SigStructure, tbs)
	require.True(t, ed25519.Verify(ed25519.PublicKey(v.PublicKey), tbs, sig))
	require.Equal(t, sig, ed25519.Sign(priv, tbs), "Ed25519 is deterministic")
	bad := bytes.Clone(tbs)
	bad[len(bad)-1] ^= 1
	require.False(t, ed25519.Verify(ed25519.PublicKey(v.PublicKey), bad, sig))

	// The chain hash is over the whole envelope, tag included.
	h := sha256.Sum256(v.Envelope)
	require.Equal(t, v.ChainHash, h[:])

	// The payload, generically: the block map of docs/record-format.md.
	var blk1 map[any]any
	require.NoError(t, dm.Unmarshal(payload, &blk1))
	require.Len(t, blk1, 7)
	require.Equal(t, uint64(1), blk1[uint64(0)])
	require.Equal(t, "plant1/gw1/kiln1", blk1[uint64(1)])
	require.Equal(t, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, blk1[uint64(2)])
	require.Equal(t, uint64(0), blk1[uint64(3)])
	require.Equal(t, make([]byte, 32), blk1[uint64(4)])
	require.Equal(t, uint64(1), blk1[uint64(5)])
	recs := blk1[uint64(6)].([]any)
	require.Len(t, recs, 3)
	genesis := recs[0].(map[any]any)
	require.Equal(t, uint64(0), genesis[uint64(0)])
	require.Equal(t, uint64(1772366400000000000), genesis[uint64(1)])
	require.Equal(t, map[any]any{uint64(0): "new", uint64(1): kid[:]}, genesis[uint64(2)])
	rd := recs[1].(map[any]any)
	require.Equal(t, uint64(1), rd[uint64(0)])
	require.Equal(t, map[any]any{
		uint64(0): "kiln1.co2", uint64(1): []any{uint64(123456), int64(-3)}, uint64(2): "%vol",
		uint64(3): uint64(0), uint64(6): uint64(2), uint64(7): []byte{0x42, 0xf6, 0xe9, 0x79},
	}, rd[uint64(2)])
	failed := recs[2].(map[any]any)
	require.Equal(t, map[any]any{
		uint64(0): "kiln1.flow", uint64(2): "Nm3/h", uint64(3): uint64(2), uint64(4): uint64(1<<3 | 1<<11), uint64(6): uint64(2),
	}, failed[uint64(2)])

	// Deterministic encoding: the generic value re-encodes to the same bytes.
	em, err := cbor.CoreDetEncOptions().EncMode()
	require.NoError(t, err)
	again, err := em.Marshal(blk1)
	require.NoError(t, err)
	require.Equal(t, payload, again)
}

// bstrHead is the CBOR head of a byte string of n bytes (n < 65536).
func bstrHead(n int) []byte {
	switch {
	case n < 24:
		return []byte{0x40 | byte(n)}
	case n < 256:
		return []byte{0x58, byte(n)}
	default:
		return []byte{0x59, byte(n >> 8), byte(n)}
	}
}

// TestConformanceOpenSSL verifies the vector with the openssl command line alone: the public
// key as PEM, the Sig_structure bytes and the raw signature. Without openssl it skips, except
// under CI=true, where it fails.
func TestConformanceOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required under CI=true and not found on PATH")
		}
		t.Skip("openssl not found on PATH")
	}
	v, pemKey := loadVector(t)
	dir := t.TempDir()
	pub, tbs, sig := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "sig_structure.bin"), filepath.Join(dir, "sig.bin")
	require.NoError(t, os.WriteFile(pub, pemKey, 0o644))
	require.NoError(t, os.WriteFile(tbs, v.SigStructure, 0o644))
	require.NoError(t, os.WriteFile(sig, v.Signature, 0o644))
	verify := func(data string) ([]byte, error) {
		return exec.Command(bin, "pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", pub, "-in", data, "-sigfile", sig).CombinedOutput()
	}
	out, err := verify(tbs)
	require.NoError(t, err, "openssl: %s", out)
	require.Contains(t, string(out), "Signature Verified Successfully")

	// A flipped bit in the signed bytes must fail under openssl too.
	bad := bytes.Clone(v.SigStructure)
	bad[len(bad)-5] ^= 0x01
	badPath := filepath.Join(dir, "bad.bin")
	require.NoError(t, os.WriteFile(badPath, bad, 0o644))
	out, err = verify(badPath)
	require.Error(t, err, "openssl accepted a tampered Sig_structure: %s", out)
}
