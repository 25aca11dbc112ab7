package verify

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

type captured struct {
	recv  time.Time
	topic string
	env   []byte
}

func readAll(t *testing.T, data []byte) ([]captured, error) {
	t.Helper()
	var got []captured
	err := ReadCapture(bytes.NewReader(data), func(recv time.Time, topic string, env []byte) error {
		got = append(got, captured{recv, topic, env})
		return nil
	})
	return got, err
}

func TestCaptureRoundTrip(t *testing.T) {
	k := newKey(t)
	s := newTestStream(t, k, origin)
	envs := s.blocks(3, 50)
	var buf bytes.Buffer
	w := NewCaptureWriter(&buf)
	want := []captured{
		{t0.Add(-time.Hour), s.topic, envs[0].Bytes},
		{t0.Add(123456789), s.topic, envs[1].Bytes},
		{time.Unix(0, -5), "mrv/v1/plant1/gw1/status", []byte{}},
		{t0.Add(2 * time.Second), s.topic, envs[2].Bytes},
	}
	for _, c := range want {
		require.NoError(t, w.Write(c.recv, c.topic, c.env))
	}
	got, err := readAll(t, buf.Bytes())
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, want[i].recv.Equal(got[i].recv), "recv %d", i)
		require.Equal(t, want[i].topic, got[i].topic)
		require.Equal(t, want[i].env, got[i].env)
	}

	// The capture replays through a verifier to the same result as the live feed.
	v, _ := newVerifier(t, Options{}, k)
	require.NoError(t, ReadCapture(bytes.NewReader(buf.Bytes()), func(recv time.Time, topic string, env []byte) error {
		v.Add(recv, topic, env)
		return nil
	}))
	sum := v.Finish()
	require.True(t, sum.Clean(), "%v", sum.Findings)
	require.Equal(t, uint64(3), sum.Blocks)
	require.Equal(t, uint64(1), sum.Ignored)

	// Empty input is an empty capture.
	got, err = readAll(t, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	// fn's error stops the read and is returned as is.
	stop := errors.New("stop")
	n := 0
	err = ReadCapture(bytes.NewReader(buf.Bytes()), func(time.Time, string, []byte) error { n++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)
}

func TestCaptureStrict(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, NewCaptureWriter(&buf).Write(t0, "a/b", []byte{1, 2, 3}))
	good := buf.Bytes()

	t.Run("truncated", func(t *testing.T) {
		for cut := 1; cut < len(good); cut++ {
			data := append(bytes.Clone(good), good[:cut]...)
			got, err := readAll(t, data)
			require.ErrorIs(t, err, ErrCaptureTruncated, "cut at %d", cut)
			require.Len(t, got, 1, "the whole records before it are delivered")
		}
	})
	rec, err := reading.Marshal(map[uint64]any{0: t0.UnixNano(), 1: "a/b", 2: []byte{1, 2}})
	require.NoError(t, err)
	bad := map[string][]byte{
		"not a map":          {0x01},
		"map of 2":           {0xa2, 0x00, 0x01, 0x01, 0x61, 'a'},
		"keys out of order":  {0xa3, 0x01, 0x61, 'a', 0x00, 0x01, 0x02, 0x41, 0x01},
		"indefinite":         {0xbf, 0x00, 0x01, 0xff},
		"topic not text":     {0xa3, 0x00, 0x01, 0x01, 0x41, 'a', 0x02, 0x41, 0x01},
		"non-shortest int":   {0xa3, 0x00, 0x18, 0x01, 0x01, 0x61, 'a', 0x02, 0x41, 0x01},
		"invalid utf-8":      {0xa3, 0x00, 0x01, 0x01, 0x61, 0xff, 0x02, 0x41, 0x01},
		"huge envelope":      {0xa3, 0x00, 0x01, 0x01, 0x61, 'a', 0x02, 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"tagged":             {0xc1, 0x00},
		"envelope cut short": rec[:len(rec)-1],
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := readAll(t, data)
			require.Error(t, err)
		})
	}
	// A well-formed record with the minimal encoding reads fine.
	got, err := readAll(t, []byte{0xa3, 0x00, 0x01, 0x01, 0x61, 'a', 0x02, 0x41, 0x01})
	require.NoError(t, err)
	require.Equal(t, []captured{{time.Unix(0, 1), "a", []byte{1}}}, got)
}
