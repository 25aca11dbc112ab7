package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse: Parse (YAML decoding, defaults, validation, error location) never panics on any
// bytes, returns either a config or an error, never both, and an accepted config is stable:
// parsing the same bytes again gives the same hash.
func FuzzParse(f *testing.F) {
	f.Add(Example)
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(f, err)
	for _, p := range files {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("gateway: {site: a, id: b}\nsources: [{name: x, modbus: {url: \"tcp://127.0.0.1:502\"}}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("- 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return // configs are small; YAML alias bombs are the library's to bound
		}
		c, err := Parse(data, "fuzz.yaml")
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c != nil, err)
		}
		if err != nil {
			return
		}
		again, err := Parse(data, "fuzz.yaml")
		if err != nil || again.Hash != c.Hash {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}
