package reading

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResendRequest(t *testing.T) {
	id := make([]byte, 16)
	id[0] = 0xab
	r := &ResendRequest{Stream: "kiln1", LogID: id, First: 10, Last: 300}
	enc, err := EncodeResendRequest(r)
	require.NoError(t, err)
	// {0: "kiln1", 1: h'ab00..', 2: 10, 3: 300}
	require.Equal(t, "a4"+"00656b696c6e31"+"0150ab000000000000000000000000000000"+"020a"+"0319012c", hex.EncodeToString(enc))
	got, err := DecodeResendRequest(enc)
	require.NoError(t, err)
	require.Equal(t, r, got)
	require.Equal(t, "mrv/v1/plant1/gw1/cmd/resend", ResendTopic("plant1", "gw1"))

	for name, bad := range map[string]*ResendRequest{
		"stream":   {Stream: "Kiln", LogID: id, First: 1, Last: 1},
		"log_id":   {Stream: "kiln1", LogID: id[:4], First: 1, Last: 1},
		"reversed": {Stream: "kiln1", LogID: id, First: 2, Last: 1},
		"too long": {Stream: "kiln1", LogID: id, First: 0, Last: MaxResendSeqs},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := EncodeResendRequest(bad)
			require.Error(t, err)
		})
	}
	for name, data := range map[string]string{
		"empty":         "",
		"unknown key":   "a5" + "00656b696c6e31" + "0150ab000000000000000000000000000000" + "020a" + "0319012c" + "0400",
		"duplicate key": "a4" + "00656b696c6e31" + "00656b696c6e31" + "020a" + "0319012c",
		"non-shortest":  "a4" + "00656b696c6e31" + "0150ab000000000000000000000000000000" + "02180a" + "0319012c",
		"not a map":     "80",
	} {
		t.Run(name, func(t *testing.T) {
			b, err := hex.DecodeString(data)
			require.NoError(t, err)
			_, err = DecodeResendRequest(b)
			require.Error(t, err)
		})
	}
	_, err = DecodeResendRequest(make([]byte, MaxResendBytes+1))
	require.ErrorContains(t, err, "more than")
}
