package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	smb "github.com/simonvetter/modbus"

	"github.com/mrv-agent/mrv-agent/sim"
)

// bank is a Modbus device (any unit id) of n float32 values in ABCD order at addresses 0,
// 2, …, 2n-2, every value changing every step.
type bank struct {
	n    int
	step time.Duration
}

func (b bank) HandleCoils(*smb.CoilsRequest) ([]bool, error) { return nil, smb.ErrIllegalFunction }
func (b bank) HandleDiscreteInputs(*smb.DiscreteInputsRequest) ([]bool, error) {
	return nil, smb.ErrIllegalFunction
}
func (b bank) HandleInputRegisters(*smb.InputRegistersRequest) ([]uint16, error) {
	return nil, smb.ErrIllegalFunction
}
func (b bank) HandleHoldingRegisters(req *smb.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite || int(req.Addr)+int(req.Quantity) > 2*b.n {
		return nil, smb.ErrIllegalDataAddress
	}
	k := time.Now().UnixNano() / int64(b.step) // the value step
	regs := make([]uint16, req.Quantity)
	for j := 0; j < int(req.Quantity); j += 2 {
		i := (int(req.Addr) + j) / 2
		t := float64(k) * b.step.Seconds()
		v := math.Float32bits(float32(100*float64(i+1)+float64(req.UnitId)+5*math.Sin(t/7+float64(i))) + float32(k%1000)*1e-3)
		regs[j] = uint16(v >> 16)
		if j+1 < len(regs) {
			regs[j+1] = uint16(v)
		}
	}
	return regs, nil
}

// startModbus starts a Modbus TCP server for bank b on a free loopback port.
func startModbus(b bank) (*smb.ModbusServer, string, error) {
	port, err := sim.FreePort("127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	srv, err := smb.NewServer(&smb.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: 16}, b)
	if err != nil {
		return nil, "", err
	}
	if err := srv.Start(); err != nil {
		return nil, "", err
	}
	return srv, addr, nil
}

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
