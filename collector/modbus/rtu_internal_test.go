package modbus

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadRTUReply(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		fn   byte
		want []byte
		err  string
	}{
		{"holding", []byte{1, 3, 4, 0x42, 0xf6, 0xe9, 0x79, 0xaa, 0xbb, 0xff}, 3, []byte{1, 3, 4, 0x42, 0xf6, 0xe9, 0x79, 0xaa, 0xbb}, ""},
		{"exception is 5 bytes", []byte{1, 0x83, 2, 0xc0, 0xf1, 0xff, 0xff}, 3, []byte{1, 0x83, 2, 0xc0, 0xf1}, ""},
		{"coils", []byte{7, 1, 1, 0x55, 0x01, 0x02}, 1, []byte{7, 1, 1, 0x55, 0x01, 0x02}, ""},
		{"other function", []byte{1, 4, 2, 0, 0, 0, 0}, 3, nil, "function 0x04, want 0x03"},
		{"short", []byte{1, 3, 4, 0x42}, 3, nil, "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readRTUReply(bytes.NewReader(c.in), c.fn)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

func FuzzReadRTUReply(f *testing.F) {
	f.Add([]byte{1, 3, 4, 0x42, 0xf6, 0xe9, 0x79, 0xaa, 0xbb}, byte(3))
	f.Add([]byte{1, 0x83, 2, 0xc0, 0xf1}, byte(3))
	f.Add([]byte{1, 3, 255}, byte(3))
	f.Fuzz(func(t *testing.T, in []byte, fn byte) {
		got, err := readRTUReply(bytes.NewReader(in), fn)
		if err == nil && (len(got) > maxRTUFrame || len(got) < 5 || len(got) > len(in)) {
			t.Fatalf("frame of %d bytes from %d", len(got), len(in))
		}
	})
}
