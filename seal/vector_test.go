package seal

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/")

// Vector is the JSON form of a worked test vector (testdata/vector1.json); every byte
// string is lowercase hex. docs/record-format.md walks through it.
type Vector struct {
	Seed         string `json:"seed"`           // Ed25519 private key seed (RFC 8032), 32 bytes
	PublicKey    string `json:"public_key"`     // raw Ed25519 public key, 32 bytes
	PublicKeyDER string `json:"public_key_der"` // PKIX SubjectPublicKeyInfo DER
	Kid          string `json:"kid"`            // SHA-256 of public_key_der
	Protected    string `json:"protected"`      // the protected header's bytes
	Payload      string `json:"payload"`        // the block payload
	SigStructure string `json:"sig_structure"`  // the signed bytes
	Signature    string `json:"signature"`      // Ed25519 over sig_structure
	Envelope     string `json:"envelope"`       // the tagged COSE_Sign1 as published
	ChainHash    string `json:"chain_hash"`     // SHA-256 of envelope: the next block's prev
}

// vector1Seed is a fixed, public, test-only key seed: never use it for anything else.
var vector1Seed = func() []byte {
	b, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	return b
}()

// vector1Block is the block of the worked example: a log's first block with its genesis
// record, a reading with a value and raw registers, and a failed reading without a value.
func vector1Block(kid [32]byte) *reading.Block {
	var logID [16]byte
	for i := range logID {
		logID[i] = byte(i)
	}
	const t = 1772366400000000000 // 2026-03-01T12:00:00Z
	return &reading.Block{
		V: reading.BlockVersion, Origin: "plant1/gw1/kiln1", LogID: logID, FirstSeq: 0, Epoch: 1,
		Records: []reading.Record{
			{Kind: reading.KindGenesis, Time: t, Body: &reading.GenesisBody{Reason: reading.ReasonNewLog, Kid: kid[:]}},
			reading.Reading{Tag: "kiln1.co2", Value: reading.NewValue(123456, -3), HasValue: true, Unit: "%vol",
				Time: t + 500000000, TimeSource: reading.TimeGateway, Raw: []byte{0x42, 0xf6, 0xe9, 0x79}}.Record(),
			reading.Reading{Tag: "kiln1.flow", Unit: "Nm3/h", Time: t + 500000000, TimeSource: reading.TimeGateway,
				Quality: reading.Quality{Severity: reading.Bad, Flags: reading.FlagCommsLoss | reading.FlagTimeout}}.Record(),
		},
	}
}

func makeVector1(t *testing.T) (Vector, []byte) {
	k, err := newKey(ed25519.NewKeyFromSeed(vector1Seed))
	require.NoError(t, err)
	payload, err := reading.EncodeBlock(vector1Block(k.Kid))
	require.NoError(t, err)
	env, err := k.Sign(payload, ContentTypeBlock)
	require.NoError(t, err)
	sg, err := Parse(env)
	require.NoError(t, err)
	require.NoError(t, sg.Verify(k.Public))
	tbs, sig, err := sg.SigStructure()
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	require.NoError(t, err)
	pemKey, err := PublicKeyPEM(k.Public)
	require.NoError(t, err)
	h := Hash(env)
	var protected []byte // RawProtected is the bstr; the vector gives its content
	require.NoError(t, cbor.Unmarshal(sg.msg.Headers.RawProtected, &protected))
	return Vector{
		Seed: hex.EncodeToString(vector1Seed), PublicKey: hex.EncodeToString(k.Public), PublicKeyDER: hex.EncodeToString(der),
		Kid: hex.EncodeToString(k.Kid[:]), Protected: hex.EncodeToString(protected),
		Payload: hex.EncodeToString(payload), SigStructure: hex.EncodeToString(tbs), Signature: hex.EncodeToString(sig),
		Envelope: hex.EncodeToString(env), ChainHash: hex.EncodeToString(h[:]),
	}, pemKey
}

// TestVector1 regenerates the worked test vector (Ed25519 signatures are deterministic) and
// compares it byte for byte with testdata/vector1.json and vector1.pub.pem. Run with
// -update to rewrite them after a deliberate format change.
func TestVector1(t *testing.T) {
	v, pemKey := makeVector1(t)
	js, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	js = append(js, '\n')
	jsonPath, pemPath := filepath.Join("testdata", "vector1.json"), filepath.Join("testdata", "vector1.pub.pem")
	if *update {
		require.NoError(t, os.WriteFile(jsonPath, js, 0o644))
		require.NoError(t, os.WriteFile(pemPath, pemKey, 0o644))
	}
	want, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	require.Equal(t, string(want), string(js), "the format changed: if on purpose, run go test ./seal -run TestVector1 -update and update docs/record-format.md")
	wantPEM, err := os.ReadFile(pemPath)
	require.NoError(t, err)
	require.Equal(t, string(wantPEM), string(pemKey))
}
