package verify

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// FuzzAddSequence feeds the verifier a script of several messages: each step picks a real
// envelope (two logs of one gateway, a fork, a rotation to a second key, a status message)
// or raw fuzz bytes, possibly with one byte flipped or truncated, a topic (the right one, a
// foreign stream's, the status topic, a malformed one) and a receive time that may jump
// forwards or backwards, with Ticks in between. Whatever the script, the verifier never
// panics (a recovered panic is a KindInternal finding), Finish is stable, and an accepted
// reading is one the key actually signed.
func FuzzAddSequence(f *testing.F) {
	k, err := seal.GenerateKey()
	require.NoError(f, err)
	k2, err := seal.GenerateKey()
	require.NoError(f, err)
	tt := &testing.T{}
	a := &testStream{t: tt, sealer: seal.NewSealer(k, 1), st: seal.Stream{Origin: origin, LogID: [16]byte{1}}, topic: "mrv/v1/" + origin + "/blocks"}
	b := &testStream{t: tt, sealer: seal.NewSealer(k, 1), st: seal.Stream{Origin: "plant1/gw1/pot1", LogID: [16]byte{2}}, topic: "mrv/v1/plant1/gw1/pot1/blocks"}
	pool := a.blocks(4, 2)
	fork := *a
	pool = append(pool, fork.seal(readingRecs(1, 99)...))
	pool = append(pool, a.seal(readingRecs(1, 7)...))
	rot := reading.Record{Kind: reading.KindKeyRotation, Time: t0.UnixNano(), Body: &reading.KeyRotationBody{Kid: k2.Kid[:], PublicKey: k2.Public}}
	pool = append(pool, a.seal(rot))
	a.sealer.SetKey(k2)
	pool = append(pool, a.seal(readingRecs(2, 5000)...))
	gap := reading.Record{Kind: reading.KindGapSeq, Time: t0.UnixNano(), Body: &reading.GapSeqBody{First: a.st.NextSeq + 1, Last: a.st.NextSeq + 3}}
	pool = append(pool, a.seal(gap))
	pool = append(pool, b.blocks(3, 1)...)
	statusPayload, err := reading.Marshal(map[uint64]any{0: uint64(1), 1: k.Kid[:], 2: []byte(k.Public)})
	require.NoError(f, err)
	status, err := k.Sign(statusPayload, seal.ContentTypeStatus)
	require.NoError(f, err)
	msgs := make([][]byte, 0, len(pool)+1)
	for _, e := range pool {
		msgs = append(msgs, e.Bytes)
	}
	msgs = append(msgs, status)
	topics := []string{a.topic, b.topic, "mrv/v1/plant1/gw1/status", "mrv/v1/plant1/gw1//blocks", "mrv/v1/a/b/c/d/blocks", "other/topic", ""}
	signed := map[string]bool{} // "tag value" pairs that were really sealed
	for _, e := range pool {
		s, err := seal.Parse(e.Bytes)
		require.NoError(f, err)
		blk, err := reading.DecodeBlock(s.Payload)
		require.NoError(f, err)
		for _, r := range blk.Records {
			if rd, ok := r.Reading(); ok {
				signed[rd.Tag+" "+rd.Value.String()] = true
			}
		}
	}

	// Scripts are 4-byte steps: op, message, topic, time; raw bytes follow a 0xff op.
	f.Add([]byte{0, 0, 0, 1, 0, 1, 0, 1, 0, 2, 0, 1, 0, 3, 0, 1})
	f.Add([]byte{0, 10, 2, 0, 0, 0, 0, 1, 0, 2, 0, 1, 0, 1, 0, 200, 1, 0, 0, 0, 0, 9, 1, 1})
	f.Add([]byte{0, 0, 0, 1, 0, 4, 0, 1, 0, 1, 0, 1, 2, 3, 0, 50, 0, 6, 0, 1, 0, 7, 0, 1, 0, 8, 0, 1})
	f.Add([]byte{0, 0, 0, 1, 3, 1, 0, 30, 0, 3, 0, 1, 1, 2, 0, 1, 0xff, 4, 0xd2, 0x84, 0x40, 0xa0})
	f.Add([]byte{0, 2, 0, 128, 0, 1, 0, 128, 0, 0, 0, 128, 4, 0, 0, 255})
	f.Fuzz(func(t *testing.T, script []byte) {
		var got []ReadingOut
		opts := Options{Keys: []ed25519.PublicKey{k.Public}, TOFU: true, ReorderWindow: 3, ReorderTimeout: 5 * time.Second,
			OnReading: func(r ReadingOut) { got = append(got, r) }, Resend: func(string, []byte) {}}
		if len(script) > 0 && script[0]&1 == 1 {
			opts.Keys = nil // TOFU only
		}
		v, err := New(opts)
		require.NoError(t, err)
		now := t0
		for steps := 0; len(script) >= 4 && steps < 64; steps++ {
			op, m, tp, dt := script[0], int(script[1]), int(script[2]), time.Duration(int8(script[3]))*time.Second
			script = script[4:]
			now = now.Add(dt)
			var msg []byte
			switch op % 6 {
			case 4:
				v.Tick(now)
				continue
			case 5:
				n := min(m, len(script))
				msg, script = script[:n], script[n:]
			default:
				msg = append([]byte(nil), msgs[m%len(msgs)]...)
				switch op % 6 {
				case 1: // flip one byte
					if len(msg) > 0 {
						msg[(m*131+tp*7)%len(msg)] ^= byte(dt) | 1
					}
				case 2: // truncate
					msg = msg[:(m*31+tp)%(len(msg)+1)]
				}
			}
			v.Add(now, topics[tp%len(topics)], msg)
		}
		sum := v.Finish()
		for _, fd := range sum.Findings {
			require.NotEqual(t, KindInternal, fd.Kind, fd.Detail)
		}
		again := v.Finish()
		require.Equal(t, len(sum.Findings), len(again.Findings), "Finish is stable")
		for _, r := range got {
			require.True(t, signed[r.Reading.Tag+" "+r.Reading.Value.String()], "accepted a reading nobody sealed: %+v", r.Reading)
		}
	})
}
