package reading

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFromFloat32ShortestForm(t *testing.T) {
	cases := []struct {
		name string
		in   float32
		want string
	}{
		{"plain", 123.456, "123.456"},
		{"small", 0.1, "0.1"},
		{"negative", -2.5, "-2.5"},
		{"integer", 100, "100"},
		{"zero", 0, "0"},
		{"large", 3.4e38, "340000000000000000000000000000000000000"},
		{"tiny", 1e-7, "0.0000001"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, ok := FromFloat32(c.in)
			require.True(t, ok)
			require.Equal(t, c.want, v.String())
			require.True(t, v.IsCanonical())
		})
	}
	_, ok := FromFloat32(float32(math.NaN()))
	require.False(t, ok)
	_, ok = FromFloat64(math.Inf(-1))
	require.False(t, ok)
}

func TestParseValue(t *testing.T) {
	good := map[string]Value{
		"1.5":                      {Mantissa: 15, Exp: -1},
		"-0.001":                   {Mantissa: -1, Exp: -3},
		"1200":                     {Mantissa: 12, Exp: 2},
		"1e-3":                     {Mantissa: 1, Exp: -3},
		"0.000":                    {},
		"+7":                       {Mantissa: 7},
		".5":                       {Mantissa: 5, Exp: -1},
		"1.25E+02":                 {Mantissa: 125},
		"100000000000000000000000": {Mantissa: 1, Exp: 23},
	}
	for in, want := range good {
		got, err := ParseValue(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-", "1.2.3", "abc", "1e", "12345678901234567890123", "1e999"} {
		_, err := ParseValue(in)
		require.Error(t, err, in)
	}
}

func TestValueArithmetic(t *testing.T) {
	v := func(s string) Value { x, err := ParseValue(s); require.NoError(t, err); return x }
	p, ok := v("123.456").Mul(v("0.1"))
	require.True(t, ok)
	require.Equal(t, "12.3456", p.String())
	s, ok := v("12.3456").Add(v("-273.15"))
	require.True(t, ok)
	require.Equal(t, "-260.8044", s.String())
	s, ok = v("1e17").Add(v("1"))
	require.True(t, ok)
	require.Equal(t, "100000000000000001", s.String())
	_, ok = v("1e18").Add(v("1e-5"))
	require.False(t, ok, "needs 24 significant digits")
	p, ok = FromInt64(math.MaxInt64).Mul(v("10"))
	require.True(t, ok, "a trailing zero keeps it representable")
	require.Equal(t, int32(1), p.Exp)
	_, ok = FromInt64(math.MaxInt64).Mul(v("3"))
	require.False(t, ok)
	u, ok := FromUint64(math.MaxUint64)
	require.False(t, ok)
	require.Equal(t, Value{}, u)
	u, ok = FromUint64(10000000000000000000)
	require.True(t, ok)
	require.Equal(t, Value{Mantissa: 1, Exp: 19}, u)
	require.InDelta(t, -260.8044, s2f(t, "-260.8044"), 1e-12)
}

func s2f(t *testing.T, s string) float64 {
	v, err := ParseValue(s)
	require.NoError(t, err)
	return v.Float64()
}

func TestValueCmp(t *testing.T) {
	v := func(s string) Value { x, err := ParseValue(s); require.NoError(t, err); return x }
	cases := []struct {
		a, b string
		want int
	}{
		{"1.5", "1.5", 0}, {"1.5", "1.50", 0}, {"1.4", "1.5", -1}, {"-2", "1", -1}, {"100", "1e2", 0},
		{"1e200", "1", 1}, {"-1e200", "1e-200", -1}, {"9223372036854775807", "-9223372036854775807", 1},
		{"0", "-0.0001", 1},
	}
	for _, c := range cases {
		require.Equal(t, c.want, v(c.a).Cmp(v(c.b)), "%s vs %s", c.a, c.b)
		require.Equal(t, -c.want, v(c.b).Cmp(v(c.a)), "%s vs %s", c.b, c.a)
	}
}
