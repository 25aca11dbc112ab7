package reading

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Value is an exact decimal number, Mantissa × 10^Exp. It is the only number type in a
// record: meters are read at their own width and converted here once, so that a verifier
// re-deriving a value from the raw register words gets the same two integers.
//
// A Value is kept canonical: the mantissa carries no trailing decimal zeros, and zero is
// {0, 0}. Two equal numbers therefore always have equal fields.
type Value struct {
	_        struct{} `cbor:",toarray"`
	Mantissa int64
	Exp      int32
}

// maxExp bounds the exponent of any Value we produce or accept, far beyond any physical
// quantity a meter reports, so that formatting and alignment never explode.
const maxExp = 300

// NewValue returns the canonical form of mantissa × 10^exp.
func NewValue(mantissa int64, exp int32) Value {
	if mantissa == 0 {
		return Value{}
	}
	for mantissa%10 == 0 {
		mantissa /= 10
		exp++
	}
	return Value{Mantissa: mantissa, Exp: exp}
}

// IsCanonical reports whether v is in the canonical form NewValue produces.
func (v Value) IsCanonical() bool {
	if v.Mantissa == 0 {
		return v.Exp == 0
	}
	return v.Mantissa%10 != 0 && v.Exp >= -maxExp && v.Exp <= maxExp
}

// FromInt64 converts an integer exactly.
func FromInt64(i int64) Value { return NewValue(i, 0) }

// FromUint64 converts an unsigned integer exactly; ok is false when it does not fit a
// canonical int64 mantissa (a value ≥ 2^63 without enough trailing zeros).
func FromUint64(u uint64) (Value, bool) {
	var exp int32
	for u != 0 && u%10 == 0 {
		u /= 10
		exp++
	}
	if u > math.MaxInt64 {
		return Value{}, false
	}
	return NewValue(int64(u), exp), true
}

// FromFloat32 converts f through its shortest float32 decimal form, so that a register
// holding 123.456f yields 123.456 and not 123.45600128173828. ok is false for NaN and ±Inf.
func FromFloat32(f float32) (Value, bool) {
	return fromFloat(float64(f), 32)
}

// FromFloat64 converts f through its shortest float64 decimal form.
func FromFloat64(f float64) (Value, bool) {
	return fromFloat(f, 64)
}

func fromFloat(f float64, bitSize int) (Value, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}, false
	}
	if f == 0 {
		return Value{}, true
	}
	v, err := ParseValue(strconv.FormatFloat(f, 'e', -1, bitSize))
	if err != nil {
		return Value{}, false
	}
	return v, true
}

// ParseValue parses a decimal number such as "-12.5", "1e-3" or "1.25E+02" exactly.
func ParseValue(s string) (Value, error) {
	orig := s
	if s == "" {
		return Value{}, fmt.Errorf("parse decimal %q: empty", orig)
	}
	var exp int64
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.ParseInt(s[i+1:], 10, 32)
		if err != nil {
			return Value{}, fmt.Errorf("parse decimal %q: bad exponent", orig)
		}
		exp = e
		s = s[:i]
	}
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg = true
		s = s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" && frac == "" || (hasDot && strings.Contains(frac, ".")) {
		return Value{}, fmt.Errorf("parse decimal %q: no digits", orig)
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	exp -= int64(len(frac))
	// Trailing zeros carry no information; dropping them first lets long inputs such as
	// "1000000000000000000000" still fit.
	for strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return Value{}, fmt.Errorf("parse decimal %q: invalid character %q", orig, c)
		}
	}
	if digits == "" {
		return Value{}, nil
	}
	m, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return Value{}, fmt.Errorf("parse decimal %q: more than 18 significant digits", orig)
	}
	if neg {
		m = -m
	}
	if exp < -maxExp || exp > maxExp {
		return Value{}, fmt.Errorf("parse decimal %q: exponent out of range", orig)
	}
	return NewValue(m, int32(exp)), nil
}

// String formats v exactly, without exponent notation ("-0.0125", "1200").
func (v Value) String() string {
	if v.Mantissa == 0 {
		return "0"
	}
	neg := v.Mantissa < 0
	digits := strconv.FormatUint(absU(v.Mantissa), 10)
	var s string
	switch {
	case v.Exp >= 0:
		s = digits + strings.Repeat("0", int(v.Exp))
	case int(-v.Exp) < len(digits):
		p := len(digits) + int(v.Exp)
		s = digits[:p] + "." + digits[p:]
	default:
		s = "0." + strings.Repeat("0", int(-v.Exp)-len(digits)) + digits
	}
	if neg {
		return "-" + s
	}
	return s
}

// Float64 returns the nearest float64 (for arithmetic in the emissions engine, which
// computes in float64 per mrv-methods.md §1.5, never for records).
func (v Value) Float64() float64 {
	f, _ := strconv.ParseFloat(strconv.FormatInt(v.Mantissa, 10)+"e"+strconv.Itoa(int(v.Exp)), 64)
	return f
}

func absU(i int64) uint64 {
	if i < 0 {
		return uint64(-(i + 1)) + 1
	}
	return uint64(i)
}

// Mul returns v × w exactly; ok is false when the product has no canonical int64 form.
func (v Value) Mul(w Value) (Value, bool) {
	if v.Mantissa == 0 || w.Mantissa == 0 {
		return Value{}, true
	}
	exp := int64(v.Exp) + int64(w.Exp)
	hi, lo := bits.Mul64(absU(v.Mantissa), absU(w.Mantissa))
	neg := (v.Mantissa < 0) != (w.Mantissa < 0)
	if hi == 0 && lo <= math.MaxInt64 {
		m := int64(lo)
		if neg {
			m = -m
		}
		return checkExp(NewValue(m, 0), exp)
	}
	p := new(big.Int).Mul(big.NewInt(v.Mantissa), big.NewInt(w.Mantissa))
	return fromBig(p, exp)
}

// Add returns v + w exactly; ok is false when the sum has no canonical int64 form.
func (v Value) Add(w Value) (Value, bool) {
	if v.Mantissa == 0 {
		return w, true
	}
	if w.Mantissa == 0 {
		return v, true
	}
	if v.Exp > w.Exp {
		v, w = w, v
	}
	// v has the smaller exponent: scale w's mantissa up to it.
	d := int64(w.Exp) - int64(v.Exp)
	if d <= 18 {
		if wm, ok := mulPow10(w.Mantissa, int(d)); ok {
			s := v.Mantissa + wm
			if (wm > 0 && v.Mantissa > 0 && s < 0) || (wm < 0 && v.Mantissa < 0 && s >= 0) {
				goto slow
			}
			return checkExp(NewValue(s, 0), int64(v.Exp))
		}
	}
slow:
	if d > 2*maxExp {
		return Value{}, false
	}
	wb := new(big.Int).Mul(big.NewInt(w.Mantissa), new(big.Int).Exp(big.NewInt(10), big.NewInt(d), nil))
	return fromBig(wb.Add(wb, big.NewInt(v.Mantissa)), int64(v.Exp))
}

var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

func mulPow10(m int64, d int) (int64, bool) {
	hi, lo := bits.Mul64(absU(m), uint64(pow10[d]))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if m < 0 {
		return -int64(lo), true
	}
	return int64(lo), true
}

func checkExp(v Value, exp int64) (Value, bool) {
	if v.Mantissa == 0 {
		return Value{}, true
	}
	e := int64(v.Exp) + exp
	if e < -maxExp || e > maxExp {
		return Value{}, false
	}
	v.Exp = int32(e)
	return v, true
}

// Cmp compares v and w exactly: -1 if v < w, 0 if equal, +1 if v > w.
func (v Value) Cmp(w Value) int {
	if v.Exp == w.Exp {
		return cmpInt(v.Mantissa, w.Mantissa)
	}
	if w.Mantissa != math.MinInt64 {
		if d, ok := v.Add(Value{Mantissa: -w.Mantissa, Exp: w.Exp}); ok {
			return cmpInt(d.Mantissa, 0)
		}
	}
	// The difference does not fit an int64 mantissa: align both as big integers.
	e := min(v.Exp, w.Exp)
	return scaledBig(v, v.Exp-e).Cmp(scaledBig(w, w.Exp-e))
}

// scaledBig returns v's mantissa × 10^d as a big integer (d ≥ 0).
func scaledBig(v Value, d int32) *big.Int {
	p := new(big.Int).Exp(bigTen, big.NewInt(int64(d)), nil)
	return p.Mul(p, big.NewInt(v.Mantissa))
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var bigTen = big.NewInt(10)

func fromBig(m *big.Int, exp int64) (Value, bool) {
	if m.Sign() == 0 {
		return Value{}, true
	}
	q, r := new(big.Int), new(big.Int)
	for {
		q.QuoRem(m, bigTen, r)
		if r.Sign() != 0 {
			break
		}
		m.Set(q)
		exp++
	}
	if !m.IsInt64() {
		return Value{}, false
	}
	return checkExp(Value{Mantissa: m.Int64()}, exp)
}
