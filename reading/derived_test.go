package reading

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func testDerived() *DerivedBody {
	return &DerivedBody{
		Method: "fuel", Window: WindowHour, Start: 1_700_000_000_000_000_000, End: 1_700_003_600_000_000_000,
		Values: []NamedValue{
			{Name: "co2", Value: Value{Mantissa: 20196, Exp: -4}, Unit: "t"},
			{Name: "energy", Value: Value{Mantissa: 36}, Unit: "GJ"},
		},
		Coverage:  Value{Mantissa: 5, Exp: -1},
		Flags:     uint32(DerivedPartial | DerivedCounterReset),
		FlagNames: (DerivedPartial | DerivedCounterReset).Names(),
		Factors:   []FactorRef{{ID: "ng-ncv", Version: "2024"}, {ID: "ng-ef", Version: "1"}},
		Inputs: []DerivedInput{{
			Origin: "plant-a/gw1/kiln1", LogID: make([]byte, 16), First: 10, Last: 99,
			Tags: []string{"kiln1.fuel_gas_total"},
		}},
		Revision: 1,
		Counts:   DerivedCounts{Expected: 3600, Valid: 1800, Bad: 2, Missing: 1798},
		Label:    "2023-11-14T22:00",
		Tier:     3,
		Hours:    &DerivedHours{Expected: 24, Valid: 23, Substituted: 1},
	}
}

func TestDerivedRoundTrip(t *testing.T) {
	b := &Block{V: BlockVersion, Origin: "plant-a/gw1/kiln-fuel", FirstSeq: 7, LogID: [16]byte{1},
		Records: []Record{{Kind: KindDerived, Time: 1_700_003_600_000_000_000, Body: testDerived()},
			{Kind: KindDerived, Time: 5, Body: &DerivedBody{Method: "cems", Window: WindowMinute}}}}
	enc, err := EncodeBlock(b)
	require.NoError(t, err)
	got, err := DecodeBlock(enc)
	require.NoError(t, err)
	require.Equal(t, b, got)
	d := got.Records[0].Body.(*DerivedBody)
	v, ok := d.Value("co2")
	require.True(t, ok)
	require.Equal(t, "2.0196", v.String())
	_, ok = d.Value("nope")
	require.False(t, ok)
	require.Equal(t, "partial|counter-reset", (DerivedPartial | DerivedCounterReset).String())
}

func TestDerivedStrict(t *testing.T) {
	for name, mut := range map[string]func(*DerivedBody){
		"non-canonical value":    func(d *DerivedBody) { d.Values[0].Value = Value{Mantissa: 10, Exp: 0} },
		"non-canonical coverage": func(d *DerivedBody) { d.Coverage = Value{Mantissa: 0, Exp: 2} },
		"short log id":           func(d *DerivedBody) { d.Inputs[0].LogID = []byte{1} },
	} {
		t.Run(name, func(t *testing.T) {
			d := testDerived()
			mut(d)
			b := &Block{V: BlockVersion, Origin: "a/b/c", Records: []Record{{Kind: KindDerived, Body: d}}}
			enc, err := EncodeBlock(b)
			require.NoError(t, err)
			_, err = DecodeBlock(enc)
			require.Error(t, err)
		})
	}
}

func TestDerivedFlagNamesComplete(t *testing.T) {
	require.Len(t, DerivedFlag(1<<len(derivedFlagNames)-1).Names(), len(derivedFlagNames))
	require.Equal(t, "bad-input", DerivedBadInput.String())
}
