package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExampleEmissions(t *testing.T) {
	c, err := Parse(Example, "example.yaml")
	require.NoError(t, err)
	require.Len(t, c.Emissions, 3)
	fuel := c.Emissions[0]
	require.Equal(t, "fuel", fuel.Method)
	require.Equal(t, "0.8", fuel.MinValidFraction.String())
	require.Equal(t, 2*time.Second, fuel.MaxHold.D())
	require.Equal(t, SubstitutionNone, fuel.Substitution.Method)
	require.Equal(t, 2*time.Second, c.Emissions[2].MaxHold.D(), "default: 2 × the source interval")
	require.Len(t, c.Factors, 5)
	require.InDelta(t, 0.036, c.Factors[0].Float64(), 0)
	for _, key := range []string{"factors", "version", "value", "divisor", "source", "table", "valid_from", "default",
		"gwp_set", "emissions", "method", "inputs", "min_valid_fraction", "reference", "temperature_degc", "pressure_kpa",
		"concentration_basis", "flow_basis", "calibration", "tier", "substitution", "mean", "sigma", "max_hold",
		"freeze_window", "shifts"} {
		require.True(t, strings.Contains(string(Example), key+":") || strings.Contains(string(Example), "  "+key+" "), "example.yaml does not document %q", key)
	}
}

const emissionsBase = `gateway: {site: a, id: b}
mqtt: {url: "mqtt://b:1"}
sources:
  - name: k
    kind: modbus
    modbus: {url: "tcp://h:502"}
    tags:
      - {id: gas, unit: Nm3, kind: counter, width: 32, max_rate: 2}
      - {id: sgas, unit: Sm3, kind: counter, width: 32, max_rate: 2}
      - {id: co2, unit: "%vol"}
      - {id: flow, unit: m3/h}
      - {id: dflow, unit: Nm3/h}
      - {id: clinker, unit: t/h}
factors:
  - {id: ncv, version: "1", value: 0.036, unit: GJ/Nm3, source: lab, valid_from: 2026-01-01}
  - {id: ef, version: "1", value: 56.1, unit: t CO2/TJ, source: IPCC, valid_from: 2006-01-01}
  - {id: ce, version: "1", value: 95.0, unit: "%", source: plant, valid_from: 2006-01-01}
  - {id: gwp4, version: "1", value: 7390, unit: t CO2e/t, source: AR4, valid_from: 2006-01-01, gwp_set: AR4}
`

func TestEmissionsValidation(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"good": {`emissions:
  - {name: f, method: fuel, inputs: {fuel: k.gas}, factors: {ncv: ncv, ef: ef}, reference: {temperature_degc: 0, pressure_kpa: 101.325}}
  - {name: s, method: cems, inputs: {concentration: k.co2, flow: k.dflow}, concentration_basis: dry, flow_basis: dry}
`, ""},
		"unknown method": {"emissions: [{name: f, method: magic}]\n", `emissions[0].method: "magic" is not one of`},
		"name clash":     {"emissions: [{name: k, method: cems, inputs: {concentration: k.co2, flow: k.dflow}, concentration_basis: dry, flow_basis: dry}]\n", `"k" is already the name of sources[0]`},
		"agent":          {"emissions: [{name: agent, method: metal-estimate}]\n", `"agent" is already the name of the agent's own stream`},
		"missing role":   {"emissions: [{name: f, method: fuel, inputs: {fuel: k.gas}, factors: {ncv: ncv}, reference: {temperature_degc: 0, pressure_kpa: 101.325}}]\n", "method fuel needs @ef"},
		"unknown tag":    {"emissions: [{name: f, method: fuel, inputs: {fuel: k.nope}, factors: {ncv: ncv, ef: ef}}]\n", `"k.nope" is not a configured tag`},
		"unknown factor": {"emissions: [{name: f, method: fuel, inputs: {fuel: k.gas}, factors: {ncv: ncv, ef: nope}, reference: {temperature_degc: 0, pressure_kpa: 101.325}}]\n", `"nope" is not the id of any factors[] record`},
		"wrong unit":     {"emissions: [{name: f, method: fuel, inputs: {fuel: k.co2}, factors: {ncv: ncv, ef: ef}}]\n", "k.co2 has unit %vol"},
		"no reference":   {"emissions: [{name: f, method: fuel, inputs: {fuel: k.sgas}, factors: {ncv: ncv, ef: ef}}]\n", "declare its reference temperature_degc and pressure_kpa"},
		"Nm3 at 15 °C":   {"emissions: [{name: f, method: fuel, inputs: {fuel: k.gas}, factors: {ncv: ncv, ef: ef}, reference: {temperature_degc: 15, pressure_kpa: 101.325}}]\n", "use Sm3"},
		"basis mismatch": {"emissions: [{name: s, method: cems, inputs: {concentration: k.co2, flow: k.dflow}, concentration_basis: wet, flow_basis: dry}]\n", "basis-mismatch"},
		"actual flow":    {"emissions: [{name: s, method: cems, inputs: {concentration: k.co2, flow: k.flow}, concentration_basis: wet, flow_basis: wet}]\n", "temperature and pressure inputs are needed"},
		"min valid":      {"emissions: [{name: s, method: cems, inputs: {concentration: k.co2, flow: k.dflow}, concentration_basis: dry, flow_basis: dry, min_valid_fraction: 1.5}]\n", "min_valid_fraction: 1.5 is out of range"},
		"shift":          {"emissions: [{name: p, method: clinker-b, inputs: {clinker: k.clinker}, factors: {ef_clinker: ef}, shifts: [\"06:30\"]}]\n", `"06:30" is not a local start time`},
		"gwp set":        {"emissions: [{name: p, method: pfc-overvoltage, inputs: {aeo: k.co2}, gwp_set: AR5, factors: {gwp_cf4: gwp4}}]\n", "is GWP set \"AR4\", but gwp_set is \"AR5\""},
		"ce fraction":    {"factors: [{id: ce2, version: \"1\", value: 0.95, unit: \"%\", source: x, valid_from: 2020-01-01}]\n", "is not a percentage > 1"},
		"dup factor":     {"factors: [{id: ef, version: \"1\", value: 1, unit: \"1\", source: x, valid_from: 2020-01-01}]\n", `"1" of "ef" is already factors[0]`},
		"bad date":       {"factors: [{id: x, version: \"1\", value: 1, unit: \"1\", source: x, valid_from: 2020-13-01}]\n", `"2020-13-01" is not a date`},
		"subst":          {"emissions: [{name: s, method: cems, inputs: {concentration: k.co2, flow: k.dflow}, concentration_basis: dry, flow_basis: dry, substitution: {method: guess}}]\n", `"guess" is not one of none, mrr-eq4`},
		"calibration":    {"emissions: [{name: s, method: cems, inputs: {concentration: k.co2, flow: k.dflow}, concentration_basis: dry, flow_basis: dry, calibration: {concentration: {version: v, a: 0}}}]\n", "a and b are required"},
	} {
		t.Run(name, func(t *testing.T) {
			y := emissionsBase + tc.yaml
			if strings.HasPrefix(tc.yaml, "factors:") {
				y = strings.Replace(emissionsBase, "factors:\n", "factors:\n  - "+strings.TrimSuffix(strings.TrimPrefix(tc.yaml, "factors: ["), "]\n")+"\n", 1)
			}
			_, err := Parse([]byte(y), "x.yaml")
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
