package modbus

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

func TestDecodeVectors(t *testing.T) {
	// Each case gives the wire bytes (hex, as read) for all four orders of one value.
	cases := []struct {
		name string
		typ  DataType
		want string // exact decimal
		wire [4]string
	}{
		//                                        ABCD                 CDAB                 BADC                 DCBA
		{"uint16", Uint16, "4660", [4]string{"1234", "1234", "3412", "3412"}},
		{"int16", Int16, "-123", [4]string{"ff85", "ff85", "85ff", "85ff"}},
		{"uint32", Uint32, "305419896", [4]string{"12345678", "56781234", "34127856", "78563412"}},
		{"uint32 max", Uint32, "4294967295", [4]string{"ffffffff", "ffffffff", "ffffffff", "ffffffff"}},
		{"int32", Int32, "-123456789", [4]string{"f8a432eb", "32ebf8a4", "a4f8eb32", "eb32a4f8"}},
		{"float32", Float32, "123.456", [4]string{"42f6e979", "e97942f6", "f64279e9", "79e9f642"}},
		{"float32 negative", Float32, "-0.1", [4]string{"bdcccccd", "cccdbdcc", "ccbdcdcc", "cdccccbd"}},
		{"float32 zero", Float32, "0", [4]string{"00000000", "00000000", "00000000", "00000000"}},
		{"float32 negative zero", Float32, "0", [4]string{"80000000", "00008000", "00800000", "00000080"}},
		{"uint64", Uint64, "81985529216486895", [4]string{"0123456789abcdef", "cdef89ab45670123", "23016745ab89efcd", "efcdab8967452301"}},
		{"uint64 1e19", Uint64, "10000000000000000000", [4]string{"8ac7230489e80000", "000089e823048ac7", "c78a0423e8890000", "0000e8890423c78a"}},
		{"int64", Int64, "-1234567890123456789", [4]string{"eeddef0b82167eeb", "7eeb8216ef0beedd", "ddee0bef1682eb7e", "eb7e16820befddee"}},
		{"float64", Float64, "123.456", [4]string{"405edd2f1a9fbe77", "be771a9fdd2f405e", "5e402fdd9f1a77be", "77be9f1a2fdd5e40"}},
	}
	for _, c := range cases {
		for o := ABCD; o <= DCBA; o++ {
			t.Run(c.name+"/"+o.String(), func(t *testing.T) {
				raw, err := hex.DecodeString(c.wire[o])
				require.NoError(t, err)
				v, ok := Decode(raw, c.typ, o)
				require.True(t, ok)
				require.Equal(t, c.want, v.String())
				require.True(t, v.IsCanonical())
			})
		}
	}
}

func TestDecodeNoValue(t *testing.T) {
	cases := []struct {
		name string
		typ  DataType
		raw  string
	}{
		{"float32 NaN", Float32, "7fc00000"},
		{"float32 +Inf", Float32, "7f800000"},
		{"float32 -Inf", Float32, "ff800000"},
		{"float64 NaN", Float64, "7ff8000000000001"},
		{"float64 +Inf", Float64, "7ff0000000000000"},
		{"uint64 max", Uint64, "ffffffffffffffff"},
		{"short", Float32, "42f6"},
		{"long", Uint16, "123456"},
		{"empty", Int16, ""},
		{"bool long", Bool, "0101"},
		{"unknown type", DataType(99), "1234"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := hex.DecodeString(c.raw)
			require.NoError(t, err)
			_, ok := Decode(raw, c.typ, ABCD)
			require.False(t, ok)
		})
	}
}

func TestDecodeBool(t *testing.T) {
	v, ok := Decode([]byte{1}, Bool, ABCD)
	require.True(t, ok)
	require.Equal(t, reading.FromInt64(1), v)
	v, ok = Decode([]byte{0}, Bool, DCBA)
	require.True(t, ok)
	require.Equal(t, reading.Value{}, v)
}

func TestParseTypeAndOrder(t *testing.T) {
	for name, typ := range typeNames {
		got, err := ParseDataType(name)
		require.NoError(t, err)
		require.Equal(t, typ, got)
		require.Equal(t, name, typ.String())
	}
	_, err := ParseDataType("float16")
	require.ErrorContains(t, err, `unknown type "float16"`)
	for _, name := range []string{"ABCD", "CDAB", "BADC", "DCBA"} {
		o, err := ParseOrder(name)
		require.NoError(t, err)
		require.Equal(t, name, o.String())
	}
	_, err = ParseOrder("abcd")
	require.Error(t, err)
}

func TestConvert(t *testing.T) {
	dec := func(s string) *reading.Value {
		v, err := reading.ParseValue(s)
		require.NoError(t, err)
		return &v
	}
	cases := []struct {
		name     string
		tag      tag
		raw      string
		want     string // "" = no value
		severity reading.Severity
		flags    reading.Flag
	}{
		{"plain float", tag{typ: Float32}, "42f6e979", "123.456", reading.Good, 0},
		{"scale exact", tag{typ: Uint32, scale: dec("0.1")}, "075bcd15", "12345678.9", reading.Good, 0},
		{"scale and offset", tag{typ: Int16, scale: dec("0.01"), offset: dec("-273.15")}, "7530", "26.85", reading.Good, 0},
		{"NaN", tag{typ: Float32}, "7fc00000", "", reading.Bad, reading.FlagNoValue},
		{"Inf", tag{typ: Float32, scale: dec("2")}, "7f800000", "", reading.Bad, reading.FlagNoValue},
		{"uint64 too large", tag{typ: Uint64}, "ffffffffffffffff", "", reading.Bad, reading.FlagNoValue},
		{"scale overflows", tag{typ: Int64, scale: dec("3")}, "7fffffffffffffff", "", reading.Bad, reading.FlagNoValue},
		{"below min", tag{typ: Int16, min: dec("0")}, "ff85", "-123", reading.Bad, reading.FlagOutOfRange},
		{"above max", tag{typ: Float32, max: dec("123.455")}, "42f6e979", "123.456", reading.Bad, reading.FlagOutOfRange},
		{"at max", tag{typ: Float32, min: dec("-1e30"), max: dec("123.456")}, "42f6e979", "123.456", reading.Good, 0},
		{"range after scale", tag{typ: Uint16, scale: dec("0.5"), max: dec("10")}, "0015", "10.5", reading.Bad, reading.FlagOutOfRange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := hex.DecodeString(c.raw)
			require.NoError(t, err)
			var r reading.Reading
			convert(&c.tag, raw, &r)
			require.Equal(t, c.want != "", r.HasValue)
			if c.want != "" {
				require.Equal(t, c.want, r.Value.String())
			} else {
				require.Equal(t, reading.Value{}, r.Value, "never a zero that looks like a value")
			}
			require.Equal(t, c.severity, r.Quality.Severity)
			require.Equal(t, c.flags, r.Quality.Flags)
			require.Equal(t, raw, r.Raw)
		})
	}
}

func TestCompare(t *testing.T) {
	v := func(m int64, e int32) reading.Value { return reading.NewValue(m, e) }
	cases := []struct {
		a, b reading.Value
		want int
	}{
		{v(1, 0), v(2, 0), -1},
		{v(15, -1), v(1, 0), 1},
		{v(-5, 0), v(1, -3), -1},
		{v(0, 0), v(-1, -300), 1},
		{v(9223372036854775807, 0), v(1, -20), 1},  // difference needs big integers
		{v(1, -20), v(9223372036854775807, 0), -1}, // and the other way round
		{v(-9223372036854775808, 0), v(-9223372036854775807, 1), 1},
		{v(123456, -3), v(123456, -3), 0},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.a.Cmp(c.b), "%s vs %s", c.a, c.b)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x42, 0xf6, 0xe9, 0x79}, uint8(Float32), uint8(ABCD))
	f.Add([]byte{0x7f, 0xc0, 0, 0}, uint8(Float32), uint8(CDAB))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(Uint64), uint8(DCBA))
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 0}, uint8(Int64), uint8(BADC))
	f.Add([]byte{1}, uint8(Bool), uint8(ABCD))
	f.Fuzz(func(t *testing.T, raw []byte, typ, order uint8) {
		v, ok := Decode(raw, DataType(typ), Order(order))
		if !ok {
			if v != (reading.Value{}) {
				t.Fatalf("no value but %v", v)
			}
			return
		}
		if !v.IsCanonical() {
			t.Fatalf("not canonical: %#v", v)
		}
		// Scaling and offsetting never panic either.
		if s, ok := v.Mul(reading.NewValue(1, -1)); ok {
			_, _ = s.Add(reading.NewValue(-27315, -2))
		}
		// An integer round-trips through its wire form.
		if DataType(typ) == Uint32 && Order(order) == ABCD {
			u := uint32(raw[0])<<24 | uint32(raw[1])<<16 | uint32(raw[2])<<8 | uint32(raw[3])
			if v != reading.FromInt64(int64(u)) {
				t.Fatalf("uint32 %d decoded as %s", u, v)
			}
		}
	})
}

func TestDecodeBit(t *testing.T) {
	cases := []struct {
		raw   []byte
		order Order
		bit   int
		want  string
		ok    bool
	}{
		{[]byte{0x80, 0x01}, ABCD, 0, "1", true},
		{[]byte{0x80, 0x01}, ABCD, 1, "0", true},
		{[]byte{0x80, 0x01}, ABCD, 15, "1", true},
		{[]byte{0x80, 0x01}, BADC, 15, "0", true}, // swapped: 0x0180
		{[]byte{0x80, 0x01}, BADC, 8, "1", true},
		{[]byte{0x80, 0x01}, BADC, 7, "1", true},
		{[]byte{0x80, 0x01}, CDAB, 0, "1", true}, // one word: no word swap
		{[]byte{0x80}, ABCD, 0, "", false},
		{[]byte{0x80, 0x01}, ABCD, 16, "", false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%x_%s_%d", c.raw, c.order, c.bit), func(t *testing.T) {
			v, ok := DecodeBit(c.raw, c.order, c.bit)
			require.Equal(t, c.ok, ok)
			if ok {
				require.Equal(t, c.want, v.String())
			}
		})
	}
}
