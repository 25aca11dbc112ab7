package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/sim"
)

// modbusSourceYAML is one Modbus source reading n float32 of each unit id in units.
func modbusSourceYAML(name, addr string, interval time.Duration, units []int, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    kind: modbus\n    interval: %s\n    timeout: %s\n    modbus: {url: \"tcp://%s\"}\n    tags:\n",
		name, interval, interval*3/4, addr)
	for _, u := range units {
		for i := range n {
			fmt.Fprintf(&b, "      - {id: u%dv%02d, unit: kW, unit_id: %d, address: %d, type: float32}\n", u, i, u, 2*i)
		}
	}
	return b.String()
}

// opcuaSourceYAML is one OPC UA source subscribing the n benchmark variables of srv.
func opcuaSourceYAML(name, endpoint string, interval time.Duration, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    kind: opcua\n    interval: %s\n    opcua: {endpoint: %q, security: none, auth: anonymous, collect: subscribe, publishing_interval: %s}\n    tags:\n",
		name, interval, endpoint, interval)
	for i := range n {
		fmt.Fprintf(&b, "      - {id: v%05d, unit: kW, node: \"nsu=%s;s=V%05d\"}\n", i, sim.KilnNamespace, i)
	}
	return b.String()
}
