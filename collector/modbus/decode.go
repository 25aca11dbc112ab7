package modbus

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/mrv-agent/mrv-agent/reading"
)

// DataType is how a tag's registers (or bit) are interpreted.
type DataType uint8

// Data types, as spelled in the config's `type`.
const (
	Uint16 DataType = iota + 1
	Int16
	Uint32
	Int32
	Float32
	Uint64
	Int64
	Float64
	Bool // a coil or discrete input; the value is 0 or 1
)

var typeNames = map[string]DataType{
	"uint16": Uint16, "int16": Int16, "uint32": Uint32, "int32": Int32, "float32": Float32,
	"uint64": Uint64, "int64": Int64, "float64": Float64, "bool": Bool,
}

// ParseDataType parses a config `type`.
func ParseDataType(s string) (DataType, error) {
	if t, ok := typeNames[s]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("unknown type %q (want uint16, int16, uint32, int32, float32, uint64, int64, float64 or bool)", s)
}

func (t DataType) String() string {
	for n, v := range typeNames {
		if v == t {
			return n
		}
	}
	return fmt.Sprintf("DataType(%d)", uint8(t))
}

// Words is the number of 16-bit registers the type occupies (0 for Bool, which is a bit).
func (t DataType) Words() int {
	switch t {
	case Uint16, Int16:
		return 1
	case Uint32, Int32, Float32:
		return 2
	case Uint64, Int64, Float64:
		return 4
	}
	return 0
}

// Order is the byte order of a multi-register value, named after how the bytes of the
// big-endian value A B C D … arrive on the wire:
//
//	ABCD  big-endian, high word first (Modbus's own order)
//	CDAB  word-swapped: low word first, each word big-endian
//	BADC  byte-swapped within each word, high word first
//	DCBA  fully reversed (little-endian)
//
// The same two rules (reverse the words, swap the bytes in each word) apply to 64-bit types;
// for 16-bit types only the byte swap matters (CDAB = ABCD, DCBA = BADC).
type Order uint8

// Orders, as spelled in the config's `order`.
const (
	ABCD Order = iota
	CDAB
	BADC
	DCBA
)

var orderNames = [...]string{ABCD: "ABCD", CDAB: "CDAB", BADC: "BADC", DCBA: "DCBA"}

// ParseOrder parses a config `order`.
func ParseOrder(s string) (Order, error) {
	for i, n := range orderNames {
		if n == s {
			return Order(i), nil
		}
	}
	return 0, fmt.Errorf("unknown order %q (want ABCD, CDAB, BADC or DCBA)", s)
}

func (o Order) String() string {
	if int(o) < len(orderNames) {
		return orderNames[o]
	}
	return fmt.Sprintf("Order(%d)", uint8(o))
}

func (o Order) wordSwap() bool { return o == CDAB || o == DCBA }
func (o Order) byteSwap() bool { return o == BADC || o == DCBA }

// Decode converts the raw register bytes of one tag, as read from the wire, to an exact
// decimal: integers exactly, floats through their shortest decimal form at their own width.
// ok is false when the bytes have the wrong length for t, or the number has no exact decimal
// form (NaN, ±Inf, a uint64 ≥ 2^63 that does not fit). It never panics.
func Decode(raw []byte, t DataType, o Order) (v reading.Value, ok bool) {
	if t == Bool {
		if len(raw) != 1 {
			return reading.Value{}, false
		}
		return reading.FromInt64(int64(raw[0] & 1)), true
	}
	n := t.Words() * 2
	if n == 0 || len(raw) != n {
		return reading.Value{}, false
	}
	// Rearrange into big-endian (ABCD…) order in a stack buffer.
	var b [8]byte
	for w := 0; w < n/2; w++ {
		src := w
		if o.wordSwap() {
			src = n/2 - 1 - w
		}
		hi, lo := raw[2*src], raw[2*src+1]
		if o.byteSwap() {
			hi, lo = lo, hi
		}
		b[2*w], b[2*w+1] = hi, lo
	}
	switch t {
	case Uint16:
		return reading.FromInt64(int64(binary.BigEndian.Uint16(b[:]))), true
	case Int16:
		return reading.FromInt64(int64(int16(binary.BigEndian.Uint16(b[:])))), true
	case Uint32:
		return reading.FromInt64(int64(binary.BigEndian.Uint32(b[:]))), true
	case Int32:
		return reading.FromInt64(int64(int32(binary.BigEndian.Uint32(b[:])))), true
	case Float32:
		return reading.FromFloat32(math.Float32frombits(binary.BigEndian.Uint32(b[:])))
	case Uint64:
		return reading.FromUint64(binary.BigEndian.Uint64(b[:]))
	case Int64:
		return reading.FromInt64(int64(binary.BigEndian.Uint64(b[:]))), true
	case Float64:
		return reading.FromFloat64(math.Float64frombits(binary.BigEndian.Uint64(b[:])))
	}
	return reading.Value{}, false
}

// DecodeBit returns bit n (0 = least significant) of one register's raw bytes, read as a
// uint16 in order o (BADC and DCBA swap its two bytes), as 0 or 1. ok is false when raw is
// not two bytes or n is not 0..15.
func DecodeBit(raw []byte, o Order, n int) (reading.Value, bool) {
	if len(raw) != 2 || n < 0 || n > 15 {
		return reading.Value{}, false
	}
	w := binary.BigEndian.Uint16(raw)
	if o.byteSwap() {
		w = w<<8 | w>>8
	}
	return reading.FromInt64(int64(w >> n & 1)), true
}
