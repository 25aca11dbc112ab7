package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestModbusBitAndMaxGap(t *testing.T) {
	base := "gateway: {site: plant-a, id: gw1}\nmqtt: {url: \"mqtt://127.0.0.1:1883\"}\nsources:\n  - name: a\n    kind: modbus\n"
	cases := []struct{ name, src, want string }{
		{"bit on a register", "    modbus: {url: \"tcp://192.0.2.1:502\", max_gap: 0}\n    tags: [{id: a, unit: \"1\", kind: state, type: bool, bit: 15}]\n", ""},
		{"bool on a register needs bit", "    modbus: {url: \"tcp://192.0.2.1:502\"}\n    tags: [{id: a, unit: \"1\", type: bool}]\n", "sources[0].tags[0].bit: is required for type bool on a holding register"},
		{"bit range", "    modbus: {url: \"tcp://192.0.2.1:502\"}\n    tags: [{id: a, unit: \"1\", type: bool, bit: 16}]\n", "sources[0].tags[0].bit: 16 is out of range 0..15"},
		{"bit on a coil", "    modbus: {url: \"tcp://192.0.2.1:502\"}\n    tags: [{id: a, unit: \"1\", register: coil, type: bool, bit: 1}]\n", "sources[0].tags[0].bit: only applies to type bool on a holding or input register"},
		{"max_gap", "    modbus: {url: \"rtuovertcp://192.0.2.1:4001\", max_gap: -1}\n    tags: [{id: a, unit: \"1\"}]\n", "sources[0].modbus.max_gap: -1 is out of range 0..125"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(base+c.src), "x.yaml")
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
		})
	}
}
