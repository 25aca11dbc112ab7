package sim

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	smb "github.com/simonvetter/modbus"
)

// device is what every simulated Modbus device shares: its server on loopback, its clock,
// the unit id it answers, the requests it counted and the fault injected into it.
type device struct {
	srv  *smb.ModbusServer
	addr string
	now  func() time.Time
	unit uint8
	t0   float64 // start-up, Unix seconds
	done chan struct{}
	once sync.Once

	requests [5]atomic.Uint64 // by function code 1..4

	// mu guards fault.
	mu    sync.Mutex
	fault Fault
}

// init resolves addr ("host:0" reserves a free port) and sets the clock; name prefixes
// errors.
func (d *device) init(name, addr string, now func() time.Time, unit uint8) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s address %q: %w", name, addr, err)
	}
	if port == "0" {
		p, err := FreePort(host)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		addr = net.JoinHostPort(host, strconv.Itoa(p))
	}
	d.addr, d.now, d.unit, d.done = addr, now, unit, make(chan struct{})
	if d.now == nil {
		d.now = time.Now
	}
	d.t0 = unixSeconds(d.now())
	return nil
}

// serve starts the Modbus TCP server with handler h.
func (d *device) serve(name string, log *slog.Logger, h smb.RequestHandler) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var err error
	d.srv, err = smb.NewServer(&smb.ServerConfiguration{
		URL:        "tcp://" + d.addr,
		Timeout:    60 * time.Second,
		MaxClients: 16,
		Logger:     slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}, h)
	if err != nil {
		return fmt.Errorf("%s server: %w", name, err)
	}
	if err := d.srv.Start(); err != nil {
		return fmt.Errorf("%s listen %s: %w", name, d.addr, err)
	}
	return nil
}

// Addr is the device's host:port.
func (d *device) Addr() string { return d.addr }

// URL is the device's address as a config modbus.url ("tcp://host:port").
func (d *device) URL() string { return "tcp://" + d.addr }

// Close stops the server, closes its client connections and releases held (slow) replies.
func (d *device) Close() error {
	d.once.Do(func() { close(d.done) })
	return d.srv.Stop()
}

// SetFault injects f (Fault{} clears it): slow replies, exceptions, busy. Dropped
// connections come from a Relay in front of the server.
func (d *device) SetFault(f Fault) {
	d.mu.Lock()
	d.fault = f
	d.mu.Unlock()
}

// Requests returns how many read requests of function code fn (1 coils, 2 discrete inputs,
// 3 holding, 4 input registers) the device has received, faulted ones included.
func (d *device) Requests(fn uint8) uint64 {
	if int(fn) >= len(d.requests) {
		return 0
	}
	return d.requests[fn].Load()
}

// admit counts the request and applies the unit id filter and the current fault.
func (d *device) admit(fn, unit uint8) error {
	d.requests[fn].Add(1)
	if d.unit != 0 && unit != d.unit {
		return smb.ErrGWTargetFailedToRespond
	}
	d.mu.Lock()
	f := d.fault
	if d.fault.Count > 0 {
		d.fault.Count--
		if d.fault.Count == 0 {
			d.fault = Fault{}
		}
	}
	d.mu.Unlock()
	switch f.Kind {
	case FaultException:
		return exceptionError(f.Code)
	case FaultBusy:
		return smb.ErrServerDeviceBusy
	case FaultSlow:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-d.done:
		}
	}
	return nil
}

// handler implements smb.RequestHandler for a simulated device: read-only registers
// (holding and input registers mirror each other) and bits (coils and discrete inputs
// mirror each other), every request counted and passed through the injected fault.
type handler struct {
	d        *device
	size     int                           // registers in the table
	regs     func(time.Time) []uint16      // the table at an instant
	bitCount int                           // bits served
	bit      func(i int, t time.Time) bool // bit i at an instant
}

func (h *handler) words(fn, unit uint8, addr, qty uint16) ([]uint16, error) {
	if err := h.d.admit(fn, unit); err != nil {
		return nil, err
	}
	if int(addr)+int(qty) > h.size {
		return nil, smb.ErrIllegalDataAddress
	}
	return append([]uint16(nil), h.regs(h.d.now())[addr:int(addr)+int(qty)]...), nil
}

func (h *handler) bits(fn, unit uint8, addr, qty uint16) ([]bool, error) {
	if err := h.d.admit(fn, unit); err != nil {
		return nil, err
	}
	if int(addr)+int(qty) > h.bitCount {
		return nil, smb.ErrIllegalDataAddress
	}
	t := h.d.now()
	out := make([]bool, qty)
	for i := range out {
		out[i] = h.bit(int(addr)+i, t)
	}
	return out, nil
}

func (h *handler) HandleCoils(req *smb.CoilsRequest) ([]bool, error) {
	if req.IsWrite {
		return nil, smb.ErrIllegalFunction
	}
	return h.bits(1, req.UnitId, req.Addr, req.Quantity)
}

func (h *handler) HandleDiscreteInputs(req *smb.DiscreteInputsRequest) ([]bool, error) {
	return h.bits(2, req.UnitId, req.Addr, req.Quantity)
}

func (h *handler) HandleHoldingRegisters(req *smb.HoldingRegistersRequest) ([]uint16, error) {
	if req.IsWrite {
		return nil, smb.ErrIllegalFunction
	}
	return h.words(3, req.UnitId, req.Addr, req.Quantity)
}

func (h *handler) HandleInputRegisters(req *smb.InputRegistersRequest) ([]uint16, error) {
	return h.words(4, req.UnitId, req.Addr, req.Quantity)
}
