package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
	"github.com/mrv-agent/mrv-agent/verify"
)

// TestVerifyKeysStateUntil: a keys file with two keys, --state across two runs over two
// halves of a capture, and --until judging truncation.
func TestVerifyKeysStateUntil(t *testing.T) {
	dir := t.TempDir()
	k, other := must2(seal.GenerateKey()), must2(seal.GenerateKey())
	keysFile := filepath.Join(dir, "keys.pem")
	require.NoError(t, os.WriteFile(keysFile, append(must(seal.PublicKeyPEM(other.Public)), must(seal.PublicKeyPEM(k.Public))...), 0o644))

	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := seal.NewSealer(k, 1)
	st := &seal.Stream{Name: "kiln1", Origin: "plant1/gw1/kiln1", LogID: [16]byte{1}}
	var envs [][]byte
	for i := range 6 {
		at := t0.Add(time.Duration(i) * 10 * time.Second).UnixNano()
		rec := reading.Record{Kind: reading.KindHeartbeat, Time: at, Body: &reading.HeartbeatBody{}}
		if i == 0 {
			rec = reading.Record{Kind: reading.KindGenesis, Time: at, Body: &reading.GenesisBody{Reason: reading.ReasonNewLog, Kid: k.Kid[:]}}
		}
		e, err := s.Seal(st, []reading.Record{rec})
		require.NoError(t, err)
		envs = append(envs, e.Bytes)
	}
	writeCapture := func(name string, envs [][]byte, from int) string {
		path := filepath.Join(dir, name)
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		w := verify.NewCaptureWriter(bw)
		for i, e := range envs {
			require.NoError(t, w.Write(t0.Add(time.Duration(from+i)*10*time.Second), "mrv/v1/plant1/gw1/kiln1/blocks", e))
		}
		require.NoError(t, bw.Flush())
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		return path
	}
	first, second := writeCapture("a.cbor", envs[:3], 0), writeCapture("b.cbor", envs[3:], 3)
	state := filepath.Join(dir, "state.db")
	runV := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"verify"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}

	code, out := runV("--file", first, "--keys", keysFile, "--state", state)
	require.Equal(t, 0, code, out)
	code, out = runV("--file", second, "--keys", keysFile, "--state", state)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "blocks 3,", "the second run continues the log without its start")
	code, out = runV("--file", second, "--keys", keysFile)
	require.Equal(t, 0, code, "without --state the second half is joined midway: %s", out)
	require.Contains(t, out, "joined")

	code, out = runV("--file", second, "--keys", keysFile, "--until", t0.Add(5*time.Minute).Format(time.RFC3339))
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "truncated plant1/gw1/kiln1")
	code, out = runV("--file", second, "--keys", keysFile, "--until", t0.Add(5*time.Minute).Format(time.RFC3339), "--heartbeat", "5m")
	require.Equal(t, 0, code, out)

	code, out = runV("--file", second, "--keys", keysFile, "--until", "yesterday")
	require.Equal(t, 2, code, out)
	code, out = runV("--file", second, "--keys", keysFile, "--resend")
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "--resend needs --broker")
	code, out = runV("--file", second, "--keys", filepath.Join(dir, "missing.pem"))
	require.Equal(t, 2, code, out)
}

func must2[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
