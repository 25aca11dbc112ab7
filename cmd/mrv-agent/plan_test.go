package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/sim"
)

func TestValidatePlan(t *testing.T) {
	dir := t.TempDir()
	cfg := `gateway: {site: plant-a, id: gw1}
mqtt: {url: "mqtt://127.0.0.1:1883"}
sources:
  - name: potline1
    kind: modbus
    modbus: {url: "tcp://192.0.2.10:502"}
    tags:
` + sim.TagsYAML(sim.PotLinePoints(), "      ") + `
  - name: meters
    kind: modbus
    modbus: {url: "rtu:///dev/ttyUSB0", baud: 9600, parity: N, stop_bits: 2, max_gap: 0}
    tags:
      - {id: a, unit: kW, unit_id: 3, register: input, address: 10, type: float32}
      - {id: b, unit: kW, unit_id: 3, register: input, address: 13, type: float32}
      - {id: c, unit: kW, unit_id: 7, register: input, address: 0, type: float64, order: DCBA}
`
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"validate", "-c", path, "--plan"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	want := path + `: ok (2 sources, 49 tags)
potline1 (tcp://192.0.2.10:502): 2 requests per poll
  unit 1   fc1 coils                 0..19    ( 20)  pot01_ae pot02_ae pot03_ae pot04_ae pot05_ae pot06_ae pot07_ae pot08_ae pot09_ae pot10_ae pot11_ae pot12_ae pot13_ae pot14_ae pot15_ae pot16_ae pot17_ae pot18_ae pot19_ae pot20_ae
  unit 1   fc3 holding registers     0..47    ( 48)  line_current pot01_voltage pot02_voltage pot03_voltage pot04_voltage pot05_voltage pot06_voltage pot07_voltage pot08_voltage pot09_voltage pot10_voltage pot11_voltage pot12_voltage pot13_voltage pot14_voltage pot15_voltage pot16_voltage pot17_voltage pot18_voltage pot19_voltage pot20_voltage ae_count ae_last_duration energy ae_minutes cells
meters (rtu:///dev/ttyUSB0): 3 requests per poll
  unit 3   fc4 input registers      10..11    (  2)  a
  unit 3   fc4 input registers      13..14    (  2)  b
  unit 7   fc4 input registers       0..3     (  4)  c
`
	require.Equal(t, want, out.String())

	// A plan the collector refuses fails validation even without --plan.
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, bytes.Replace([]byte(cfg), []byte("baud: 9600"), []byte("baud: 12345"), 1), 0o600))
	out.Reset()
	errb.Reset()
	code = run(t.Context(), []string{"validate", "-c", bad}, &out, &errb)
	require.Equal(t, 1, code)
	require.Contains(t, errb.String(), "sources[1] (meters): modbus.url: baud 12345 is not a standard rate")
}
