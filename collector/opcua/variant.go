package opcua

import (
	"github.com/gopcua/opcua/ua"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Convert turns a variant into an exact decimal at its own width: integers exactly, a
// Float through its shortest float32 form (reading.FromFloat32), a Double through its
// shortest float64 form, a Boolean as 0 or 1. ok is false for every other type (strings,
// arrays, structures, null), for NaN and ±Inf and for a UInt64 that does not fit.
func Convert(v *ua.Variant) (reading.Value, bool) {
	if v == nil || v.ArrayLength() > 0 || len(v.ArrayDimensions()) > 0 {
		return reading.Value{}, false
	}
	switch x := v.Value().(type) {
	case bool:
		if x {
			return reading.FromInt64(1), true
		}
		return reading.FromInt64(0), true
	case int8:
		return reading.FromInt64(int64(x)), true
	case byte:
		return reading.FromInt64(int64(x)), true
	case int16:
		return reading.FromInt64(int64(x)), true
	case uint16:
		return reading.FromInt64(int64(x)), true
	case int32:
		return reading.FromInt64(int64(x)), true
	case uint32:
		return reading.FromInt64(int64(x)), true
	case int64:
		return reading.FromInt64(x), true
	case uint64:
		return reading.FromUint64(x)
	case float32:
		return reading.FromFloat32(x)
	case float64:
		return reading.FromFloat64(x)
	}
	return reading.Value{}, false
}

// rawVariant is the variant's OPC UA binary encoding (Part 6, 5.2.2.16), the Raw of a
// reading: a verifier re-derives Value from it with Convert's rules. nil if it does not
// encode.
func rawVariant(v *ua.Variant) []byte {
	if v == nil {
		return nil
	}
	b, err := v.Encode()
	if err != nil {
		return nil
	}
	return b
}
