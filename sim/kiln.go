package sim

import (
	"encoding/binary"
	"log/slog"
	"math"
	"time"

	smb "github.com/simonvetter/modbus"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Point describes one register point of a simulator, in the words of the config's tag keys,
// so the demo can build a matching config without sim importing config.
type Point struct {
	ID       string
	Unit     string
	Kind     string // rate | counter | state
	Register string // holding | input | coil | discrete
	Address  int
	Type     string // float32 | uint32 …
	Order    string // ABCD …
	Scale    string // "" = 1
	Width    int    // counters: rollover width in bits
	MaxRate  string // counters: units per second
}

// The kiln's register map: holding registers, float32 and uint32 in ABCD order. Registers
// 12-19 are spare (read as zero), so a plan with hole bridging reads the map in one request.
// Input registers mirror the holding registers; coil 0 and discrete input 0 are "kiln running".
// The counters' max_rate (units per second) is the meter's ceiling, about 8 times the
// process rate: a reading's time is its poll's start, so two polls can be closer in time
// than their values are (jitter), and one count of resolution must fit the allowance of
// one interval (mrv-methods.md §1.5).
var kilnPoints = []Point{
	{ID: "fuel_gas_flow", Unit: "Nm3/h", Kind: "rate", Register: "holding", Address: 0, Type: "float32", Order: "ABCD"},
	{ID: "fuel_gas_total", Unit: "Nm3", Kind: "counter", Register: "holding", Address: 2, Type: "uint32", Order: "ABCD", Scale: "0.1", Width: 32, MaxRate: "20"},
	{ID: "kiln_feed", Unit: "t/h", Kind: "rate", Register: "holding", Address: 4, Type: "float32", Order: "ABCD"},
	{ID: "clinker", Unit: "t/h", Kind: "rate", Register: "holding", Address: 6, Type: "float32", Order: "ABCD"},
	{ID: "stack_co2", Unit: "%vol", Kind: "rate", Register: "holding", Address: 8, Type: "float32", Order: "ABCD"},
	{ID: "flue_gas_flow", Unit: "Nm3/h", Kind: "rate", Register: "holding", Address: 10, Type: "float32", Order: "ABCD"},
	{ID: "power", Unit: "kW", Kind: "rate", Register: "holding", Address: 20, Type: "float32", Order: "ABCD"},
	{ID: "energy", Unit: "kWh", Kind: "counter", Register: "holding", Address: 22, Type: "uint32", Order: "ABCD", Width: 32, MaxRate: "20"},
}

// kilnRegisters is the size of the register table; reads beyond it get exception 2.
const kilnRegisters = 24

// KilnPoints returns the kiln's points (a copy).
func KilnPoints() []Point { return append([]Point(nil), kilnPoints...) }

// FaultKind selects what a faulty kiln does to requests.
type FaultKind uint8

// Faults.
const (
	FaultNone      FaultKind = iota
	FaultException           // answer with an exception (Fault.Code, default 4 server device failure)
	FaultBusy                // answer with exception 6, server device busy
	FaultSlow                // hold each reply back for Fault.Delay
)

// Fault is injected with SetFault.
type Fault struct {
	Kind  FaultKind
	Code  uint8         // FaultException: the exception code (1-4, 5, 6, 8, 10, 11); 0 means 4
	Delay time.Duration // FaultSlow
	Count int           // the fault applies to this many requests, then clears; 0 = until replaced
}

// KilnOptions configure a Kiln. The zero value is usable.
type KilnOptions struct {
	// Now is the clock the process values are computed from. nil means time.Now. Tests pass
	// a fixed clock to get known values.
	Now func() time.Time
	// UnitID, when not 0, is the only unit id served; other ids get exception 11 (gateway
	// target failed to respond). 0 serves every unit id.
	UnitID uint8
	// FuelGasTotal and Energy are the counters' values at start-up (Nm3, kWh).
	// 0 means 12345678.9 Nm3 and 4567890 kWh.
	FuelGasTotal float64
	Energy       float64
	// Log receives the Modbus server's messages at Debug. nil discards them.
	Log *slog.Logger
}

// Kiln is a simulated cement kiln on a Modbus TCP server (simonvetter/modbus) on loopback.
// Its values follow slow sinusoids around realistic set points with faster, smaller
// components as deterministic noise; counters are the exact integrals of their rates.
type Kiln struct {
	device
	c0 [2]float64
}

// StartKiln starts a kiln on addr ("127.0.0.1:0" picks a free port).
func StartKiln(addr string, opts KilnOptions) (*Kiln, error) {
	k := &Kiln{c0: [2]float64{opts.FuelGasTotal, opts.Energy}}
	if err := k.init("kiln", addr, opts.Now, opts.UnitID); err != nil {
		return nil, err
	}
	if k.c0[0] == 0 {
		k.c0[0] = 12345678.9
	}
	if k.c0[1] == 0 {
		k.c0[1] = 4567890
	}
	if err := k.serve("kiln", opts.Log, k.handler()); err != nil {
		return nil, err
	}
	return k, nil
}

// ValueAt returns the exact value a client decoding point id (with its scale) reads at t,
// after the register encoding (a float32 is rounded to float32; a counter is truncated to
// its register units and wraps at 2^32).
func (k *Kiln) ValueAt(id string, t time.Time) (reading.Value, bool) {
	regs := k.registers(t)
	for _, p := range kilnPoints {
		if p.ID != id {
			continue
		}
		w := regs[p.Address : p.Address+2]
		bits := uint32(w[0])<<16 | uint32(w[1])
		if p.Type == "float32" {
			return reading.FromFloat32(math.Float32frombits(bits))
		}
		v := reading.FromInt64(int64(bits))
		if p.Scale != "" {
			s, err := reading.ParseValue(p.Scale)
			if err != nil {
				return reading.Value{}, false
			}
			return v.Mul(s)
		}
		return v, true
	}
	return reading.Value{}, false
}

// wave is amp·sin(2πt/period + phase).
type wave struct{ amp, period, phase float64 }

// signal is base + Σ waves: the slow ones are the process, the fast small ones the noise.
type signal struct {
	base  float64
	waves []wave
}

func (s signal) at(t float64) float64 {
	v := s.base
	for _, w := range s.waves {
		v += w.amp * math.Sin(2*math.Pi*t/w.period+w.phase)
	}
	return v
}

// integral returns ∫ s dt from t0 to t, in value·seconds, exactly (no accumulation error).
func (s signal) integral(t0, t float64) float64 {
	v := s.base * (t - t0)
	for _, w := range s.waves {
		k := 2 * math.Pi / w.period
		v += w.amp / k * (math.Cos(k*t0+w.phase) - math.Cos(k*t+w.phase))
	}
	return v
}

var (
	clinker = signal{125, []wave{{4, 3600, 0}, {1.5, 610, 1}, {0.4, 47, 2}, {0.15, 7.3, 3}}}
	feedMix = signal{0, []wave{{1.2, 230, 0.5}, {0.3, 13.1, 1.7}}} // added to 1.6 × clinker
	fuelGas = signal{9000, []wave{{300, 3600, 0.3}, {120, 540, 2}, {30, 31, 1}, {10, 5.1, 0}}}
	co2     = signal{22.5, []wave{{1.2, 1800, 1}, {0.3, 127, 0}, {0.08, 9.7, 2}}}
	flueGas = signal{275000, []wave{{12000, 3600, 0.3}, {4000, 420, 1}, {800, 23, 2}}}
	power   = signal{9000, []wave{{250, 2400, 2}, {80, 300, 1}, {25, 11, 0.7}}}
)

func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// registers computes the whole register table at t.
func (k *Kiln) registers(t time.Time) [kilnRegisters]uint16 {
	s := unixSeconds(t)
	var r [kilnRegisters]uint16
	putF := func(addr int, v float64) {
		b := math.Float32bits(float32(v))
		r[addr], r[addr+1] = uint16(b>>16), uint16(b)
	}
	putU := func(addr int, v float64) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(int64(math.Floor(v)))) // wraps at 2^32 below
		r[addr], r[addr+1] = binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:])
	}
	cl := clinker.at(s)
	putF(0, fuelGas.at(s))
	putU(2, (k.c0[0]+fuelGas.integral(k.t0, s)/3600)*10) // Nm3 in units of 0.1
	putF(4, 1.6*cl+feedMix.at(s))
	putF(6, cl)
	putF(8, co2.at(s))
	putF(10, flueGas.at(s))
	putF(20, power.at(s))
	putU(22, k.c0[1]+power.integral(k.t0, s)/3600)
	return r
}

func exceptionError(code uint8) error {
	switch code {
	case 1:
		return smb.ErrIllegalFunction
	case 2:
		return smb.ErrIllegalDataAddress
	case 3:
		return smb.ErrIllegalDataValue
	case 5:
		return smb.ErrAcknowledge
	case 6:
		return smb.ErrServerDeviceBusy
	case 8:
		return smb.ErrMemoryParityError
	case 10:
		return smb.ErrGWPathUnavailable
	case 11:
		return smb.ErrGWTargetFailedToRespond
	}
	return smb.ErrServerDeviceFailure
}

// handler serves the kiln's register table and its one "running" bit (always on).
func (k *Kiln) handler() *handler {
	return &handler{d: &k.device, size: kilnRegisters, bitCount: 1,
		regs: func(t time.Time) []uint16 { r := k.registers(t); return r[:] },
		bit:  func(int, time.Time) bool { return true }}
}
