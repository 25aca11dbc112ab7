package seal

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.key")
	k, err := GenerateKey()
	require.NoError(t, err)
	require.NoError(t, WriteKey(path, k))
	require.Error(t, WriteKey(path, k), "never overwrite a key")

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	k2, err := LoadKey(path)
	require.NoError(t, err)
	require.Equal(t, k.Kid, k2.Kid)
	pub, err := LoadPublicKey(path + ".pub")
	require.NoError(t, err)
	require.Equal(t, k.Public, pub)

	require.NoError(t, os.Chmod(path, 0o640))
	_, err = LoadKey(path)
	require.ErrorContains(t, err, "mode 0640")
	require.NoError(t, os.Chmod(path, 0o604))
	_, err = LoadKey(path)
	require.Error(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.key"), []byte("nope"), 0o600))
	_, err = LoadKey(filepath.Join(dir, "bad.key"))
	require.ErrorContains(t, err, "PKCS#8")
}

func testRecords(n int) []reading.Record {
	recs := make([]reading.Record, n)
	for i := range recs {
		recs[i] = reading.Reading{Tag: "kiln1.co2", Value: reading.NewValue(int64(200+i), -1), HasValue: true, Unit: "%vol", Time: int64(i)}.Record()
	}
	return recs
}

func TestSealChainAndVerify(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	s := NewSealer(k, 7)
	st := &Stream{Name: "kiln1", Origin: "plant/gw/kiln1", LogID: [16]byte{1}}

	e1, err := s.Seal(st, testRecords(3))
	require.NoError(t, err)
	require.Equal(t, uint64(0), e1.FirstSeq)
	require.Equal(t, uint64(2), e1.LastSeq())
	require.Equal(t, Hash(e1.Bytes), st.LastHash)
	e2, err := s.Seal(st, testRecords(2))
	require.NoError(t, err)
	require.Equal(t, uint64(3), e2.FirstSeq)
	require.Equal(t, uint64(5), st.NextSeq)

	sg, err := Parse(e2.Bytes)
	require.NoError(t, err)
	require.Equal(t, k.Kid, sg.Kid)
	require.Equal(t, ContentTypeBlock, sg.ContentType)
	require.NoError(t, sg.Verify(k.Public))
	b, err := reading.DecodeBlock(sg.Payload)
	require.NoError(t, err)
	require.Equal(t, Hash(e1.Bytes), b.Prev, "prev is the hash of the previous envelope")
	require.Equal(t, uint64(7), b.Epoch)

	// The Sig_structure verifies with plain crypto/ed25519, without go-cose.
	tbs, sig, err := sg.SigStructure()
	require.NoError(t, err)
	require.True(t, ed25519.Verify(k.Public, tbs, sig))

	other, err := GenerateKey()
	require.NoError(t, err)
	require.Error(t, sg.Verify(other.Public), "a key other than the kid's")

	// A flipped payload bit fails verification; a flipped byte anywhere fails parsing or verification.
	for i := range e2.Bytes {
		mut := append([]byte(nil), e2.Bytes...)
		mut[i] ^= 0x01
		p, err := Parse(mut)
		if err != nil {
			continue
		}
		require.Error(t, p.Verify(k.Public), "flip at byte %d went unnoticed", i)
	}
}

func TestParseRejectsForeignHeaders(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	env, err := k.Sign([]byte{0xa0}, "application/json")
	require.NoError(t, err)
	_, err = Parse(env)
	require.ErrorContains(t, err, "content type")
	_, err = Parse(nil)
	require.Error(t, err)
}

func BenchmarkSeal500(b *testing.B) {
	k, err := GenerateKey()
	require.NoError(b, err)
	s := NewSealer(k, 1)
	st := &Stream{Name: "kiln1", Origin: "plant/gw/kiln1"}
	recs := testRecords(500)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(st, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "readings/s")
}
