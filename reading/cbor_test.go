package reading

import (
	"encoding/hex"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/require"
)

func testBlock() *Block {
	seq := uint64(41)
	return &Block{
		V: BlockVersion, Origin: "plant1/gw1/kiln1", FirstSeq: 42, Epoch: 3,
		LogID: [16]byte{1, 2, 3}, Prev: [32]byte{9},
		Records: []Record{
			{Kind: KindGenesis, Time: 1, Body: &GenesisBody{Reason: ReasonBufferLost, Kid: []byte{1}, PrevLogID: []byte{2}, PrevLastSeq: &seq}},
			Reading{Tag: "kiln1.co2", Value: Value{Mantissa: 123456, Exp: -3}, HasValue: true, Unit: "%vol", Time: 1700000000123456789, TimeSource: TimeGateway, Raw: []byte{0x42, 0xf6, 0xe9, 0x79}}.Record(),
			Reading{Tag: "kiln1.flow", Unit: "Nm3/h", Time: 5, Quality: Quality{Severity: Bad, Flags: FlagException | FlagCommsLoss, Status: 2}}.Record(),
			{Kind: KindGapTime, Time: 6, Body: &GapTimeBody{From: 1, To: 6, Reason: ReasonAgentDown}},
			{Kind: KindGapSeq, Time: 7, Body: &GapSeqBody{First: 1, Last: 2, Reason: ReasonExpired, LastHash: make([]byte, 32)}},
			{Kind: KindHeartbeat, Time: 8, Body: &HeartbeatBody{}},
			{Kind: KindConfig, Time: 9, Body: &ConfigBody{Hash: make([]byte, 32)}},
			{Kind: KindKeyRotation, Time: 10, Body: &KeyRotationBody{Kid: make([]byte, 32), PublicKey: make([]byte, 32)}},
		},
	}
}

func TestBlockRoundTrip(t *testing.T) {
	b := testBlock()
	enc, err := EncodeBlock(b)
	require.NoError(t, err)
	got, err := DecodeBlock(enc)
	require.NoError(t, err)
	require.Equal(t, b, got)
	r, ok := got.Records[1].Reading()
	require.True(t, ok)
	require.Equal(t, "123.456", r.Value.String())
	require.Equal(t, uint64(49), got.LastSeq())

	// The reading body's value is the two-element array [mantissa, exp].
	v, err := Marshal(Value{Mantissa: -5, Exp: -1})
	require.NoError(t, err)
	require.Equal(t, "822420", hex.EncodeToString(v))
}

func TestDecodeBlockStrict(t *testing.T) {
	enc, err := EncodeBlock(testBlock())
	require.NoError(t, err)

	var generic map[int]any
	require.NoError(t, cbor.Unmarshal(enc, &generic))
	reenc := func(m any) []byte {
		b, err := cbor.Marshal(m)
		require.NoError(t, err)
		return b
	}
	cases := map[string][]byte{
		"unknown top-level key": reenc(withKey(generic, 7, 1)),
		"wrong version":         reenc(withKey(generic, 0, 2)),
		"bad origin":            reenc(withKey(generic, 1, "Plant/GW")),
		"truncated":             enc[:len(enc)-3],
		"tagged":                append([]byte{0xc1}, enc...),
		"empty":                 {},
		// {0:1, 0:1}: a duplicate key.
		"duplicate key": {0xa2, 0x00, 0x01, 0x00, 0x01},
		// An indefinite-length map.
		"indefinite": {0xbf, 0x00, 0x01, 0xff},
	}
	noncanon := append([]byte(nil), enc...)
	// Re-encode the version as a two-byte integer (0x18 0x01): valid CBOR, not shortest form.
	noncanon = append([]byte{noncanon[0], 0x00, 0x18, 0x01}, noncanon[3:]...)
	cases["non-shortest integer"] = noncanon
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeBlock(in)
			require.Error(t, err)
		})
	}

	t.Run("non-canonical decimal", func(t *testing.T) {
		b := testBlock()
		b.Records[1].Body.(*ReadingBody).Value = &Value{Mantissa: 10, Exp: 0}
		enc, err := EncodeBlock(b)
		require.NoError(t, err)
		_, err = DecodeBlock(enc)
		require.ErrorIs(t, err, ErrNotCanonical)
	})
	t.Run("float value", func(t *testing.T) {
		b := testBlock()
		b.Records = b.Records[:2]
		enc, err := EncodeBlock(b)
		require.NoError(t, err)
		var m map[int]any
		require.NoError(t, cbor.Unmarshal(enc, &m))
		recs := m[6].([]any)
		rec := recs[1].(map[any]any)
		body := rec[uint64(2)].(map[any]any)
		body[uint64(1)] = []any{1.5, 0}
		_, err = DecodeBlock(reenc(m))
		require.Error(t, err)
	})
	t.Run("unknown kind", func(t *testing.T) {
		raw := reenc(map[int]any{0: 9, 1: 0, 2: map[int]any{}})
		var r Record
		require.ErrorIs(t, r.UnmarshalCBOR(raw), ErrUnknownKind)
	})
}

func withKey(m map[int]any, k int, v any) map[int]any {
	c := make(map[int]any, len(m)+1)
	for kk, vv := range m {
		c[kk] = vv
	}
	c[k] = v
	return c
}

func FuzzDecodeBlock(f *testing.F) {
	enc, err := EncodeBlock(testBlock())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBlock(data)
		if err != nil {
			return
		}
		again, err := EncodeBlock(b)
		if err != nil {
			t.Fatalf("decoded block does not encode: %v", err)
		}
		if string(again) != string(data) {
			t.Fatalf("round trip changed the bytes")
		}
	})
}
