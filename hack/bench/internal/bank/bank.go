// Package bank is the Modbus device of the reference workloads (BENCHMARKS.md): N float32
// values in ABCD order at addresses 0, 2, …, 2N-2, every value changing every Step. It
// answers any unit id; values differ by unit id so that devices are told apart.
package bank

import (
	"fmt"
	"math"
	"time"

	smb "github.com/simonvetter/modbus"

	"github.com/mrv-agent/mrv-agent/sim"
)

// Bank is the device's register handler.
type Bank struct {
	N    int
	Step time.Duration
}

func (b Bank) HandleCoils(*smb.CoilsRequest) ([]bool, error) { return nil, smb.ErrIllegalFunction }
func (b Bank) HandleDiscreteInputs(*smb.DiscreteInputsRequest) ([]bool, error) {
	return nil, smb.ErrIllegalFunction
}
func (b Bank) HandleInputRegisters(*smb.InputRegistersRequest) ([]uint16, error) {
	return nil, smb.ErrIllegalFunction
}

// HandleHoldingRegisters serves the values of the current step.
func (b Bank) HandleHoldingRegisters(req *smb.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite || int(req.Addr)+int(req.Quantity) > 2*b.N {
		return nil, smb.ErrIllegalDataAddress
	}
	k := time.Now().UnixNano() / int64(b.Step) // the value step
	regs := make([]uint16, req.Quantity)
	for j := 0; j < int(req.Quantity); j += 2 {
		i := (int(req.Addr) + j) / 2
		t := float64(k) * b.Step.Seconds()
		v := math.Float32bits(float32(100*float64(i+1)+float64(req.UnitId)+5*math.Sin(t/7+float64(i))) + float32(k%1000)*1e-3)
		regs[j] = uint16(v >> 16)
		if j+1 < len(regs) {
			regs[j+1] = uint16(v)
		}
	}
	return regs, nil
}

// Start starts a Modbus TCP server for b on a free loopback port, for up to maxClients
// connections, and returns it with its address.
func Start(b Bank, maxClients uint) (*smb.ModbusServer, string, error) {
	port, err := sim.FreePort("127.0.0.1")
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	srv, err := smb.NewServer(&smb.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute, MaxClients: maxClients}, b)
	if err != nil {
		return nil, "", err
	}
	if err := srv.Start(); err != nil {
		return nil, "", err
	}
	return srv, addr, nil
}
