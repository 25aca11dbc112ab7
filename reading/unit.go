package reading

import (
	"slices"
	"strings"
)

// Unit is a unit of measure from the closed vocabulary below. Config validation refuses
// any other spelling, so every stage and every verifier reads units the same way.
type Unit string

// units is the closed vocabulary of ARCHITECTURE.md ("Readings"). Extend it here, with a
// test, when a meter needs more. "1" is the unit of dimensionless counts and states.
var units = []Unit{
	"kWh", "MWh", "kW", "MW", "Nm3", "Nm3/h", "Sm3", "Sm3/h", "m3/h", "t", "t/h", "kg", "kg/h",
	"%vol", "ppm", "mg/Nm3", "g/Nm3", "kA", "A", "V", "mV", "degC", "K", "kPa", "Pa", "GJ", "TJ",
	"min", "s", "1",
}

// Units returns the vocabulary, in its documented order.
func Units() []Unit { return slices.Clone(units) }

// Valid reports whether u belongs to the vocabulary (case-sensitive: "kwh" is refused).
func (u Unit) Valid() bool { return slices.Contains(units, u) }

// UnitList is the vocabulary as one comma-separated string, for error messages.
func UnitList() string {
	s := make([]string, len(units))
	for i, u := range units {
		s[i] = string(u)
	}
	return strings.Join(s, ", ")
}
