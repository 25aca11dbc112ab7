package seal

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse: Parse never panics on any bytes; what it accepts is canonical (its bytes are
// exactly what the library re-encodes), carries a known content type and a 32-byte kid, and
// never verifies under a key other than the one that signed the seed.
func FuzzParse(f *testing.F) {
	k, err := GenerateKey()
	require.NoError(f, err)
	other, err := GenerateKey()
	require.NoError(f, err)
	for _, ct := range []string{ContentTypeBlock, ContentTypeStatus} {
		env, err := k.Sign([]byte{0xa1, 0x00, 0x01}, ct)
		require.NoError(f, err)
		f.Add(env)
		f.Add(env[1:]) // untagged
	}
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if s.ContentType != ContentTypeBlock && s.ContentType != ContentTypeStatus {
			t.Fatalf("content type %q accepted", s.ContentType)
		}
		if _, _, err := s.SigStructure(); err != nil {
			t.Fatalf("accepted envelope has no Sig_structure: %v", err)
		}
		if s.Verify(other.Public) == nil {
			t.Fatal("verified under a key that never signed it")
		}
		if s.Verify(k.Public) == nil && !bytes.Equal(s.Kid[:], k.Kid[:]) {
			t.Fatal("verified under k with another kid")
		}
	})
}
