package sim

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	smb "github.com/simonvetter/modbus"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Pots is the number of pots of the simulated line (a section of a real line of 200-400).
const Pots = 20

// The pot line's register map (holding registers; input registers mirror them):
//
//	0-1     line current, kA, float32 ABCD
//	2-41    pot 1..20 voltage, V, float32 ABCD (2 registers each)
//	42      anode effects since start-up, uint16 (wraps)
//	43      duration of the last finished anode effect, s, uint16
//	44      energy, uint16 in units of 10 kWh: wraps every 655 360 kWh, about a day
//	45-46   anode-effect minutes of all pots since start-up, uint32 in units of 0.01 min
//	47      pots in operation, uint16
//
// Coils (and discrete inputs) 0..19 are "anode effect in progress" per pot.
const (
	potLineRegisters = 48
	regAECount       = 42
	regAELast        = 43
	regEnergy        = 44
	regAEMinutes     = 45
	regCells         = 47
)

var potLinePoints = func() []Point {
	ps := []Point{{ID: "line_current", Unit: "kA", Kind: "rate", Register: "holding", Address: 0, Type: "float32", Order: "ABCD"}}
	for i := range Pots {
		ps = append(ps, Point{ID: fmt.Sprintf("pot%02d_voltage", i+1), Unit: "V", Kind: "rate", Register: "holding", Address: 2 + 2*i, Type: "float32", Order: "ABCD"})
	}
	ps = append(ps,
		Point{ID: "ae_count", Unit: "1", Kind: "counter", Register: "holding", Address: regAECount, Type: "uint16", Order: "ABCD", Width: 16, MaxRate: "1"},
		Point{ID: "ae_last_duration", Unit: "s", Kind: "state", Register: "holding", Address: regAELast, Type: "uint16", Order: "ABCD"},
		Point{ID: "energy", Unit: "kWh", Kind: "counter", Register: "holding", Address: regEnergy, Type: "uint16", Order: "ABCD", Scale: "10", Width: 16, MaxRate: "50"},
		// Every pot in an effect at once counts Pots minutes a minute: 0.34 min/s.
		Point{ID: "ae_minutes", Unit: "min", Kind: "counter", Register: "holding", Address: regAEMinutes, Type: "uint32", Order: "ABCD", Scale: "0.01", Width: 32, MaxRate: "1"},
		Point{ID: "cells", Unit: "1", Kind: "state", Register: "holding", Address: regCells, Type: "uint16", Order: "ABCD"},
	)
	for i := range Pots {
		ps = append(ps, Point{ID: fmt.Sprintf("pot%02d_ae", i+1), Unit: "1", Kind: "state", Register: "coil", Address: i, Type: "bool", Order: "ABCD"})
	}
	return ps
}()

// PotLinePoints returns the pot line's points (a copy). The energy counter's rollover is
// 2^16 register units, i.e. 655 360 kWh after its scale of 10: the width a config gives
// applies to the raw register (mrv-methods.md §1.5).
func PotLinePoints() []Point { return append([]Point(nil), potLinePoints...) }

// PotLineOptions configure a PotLine. The zero value is usable.
type PotLineOptions struct {
	// Now is the clock the process values are computed from. nil means time.Now.
	Now func() time.Time
	// UnitID, when not 0, is the only unit id served; others get exception 11.
	UnitID uint8
	// Energy is the energy counter at start-up, kWh. Tests start it just below the wrap.
	Energy float64
	// Log receives the Modbus server's messages at Debug. nil discards them.
	Log *slog.Logger
}

// PotLine is a simulated aluminium pot line on a Modbus TCP server on loopback: a line
// current of about 300 kA through Pots pots in series at about 4.2 V each, anode effects
// (a pot's voltage jumps to 30-40 V for 15 s to 2 min) on a deterministic schedule, and an
// energy counter that is the exact integral of line power and wraps at 16 bits.
type PotLine struct {
	device
	e0 float64
}

// StartPotLine starts a pot line on addr ("127.0.0.1:0" picks a free port).
func StartPotLine(addr string, opts PotLineOptions) (*PotLine, error) {
	pl := &PotLine{e0: opts.Energy}
	if err := pl.init("pot line", addr, opts.Now, opts.UnitID); err != nil {
		return nil, err
	}
	if err := pl.serve("pot line", opts.Log, pl.handler()); err != nil {
		return nil, err
	}
	return pl, nil
}

// Handler returns the pot line's request handler, to serve it over RTU (ServeRTU).
func (pl *PotLine) Handler() smb.RequestHandler { return pl.handler() }

// Line current and pot voltage in normal operation.
var (
	lineCurrent = signal{300, []wave{{3, 1800, 0}, {1, 97, 1}, {0.2, 6.1, 2}}} // kA
	potVoltage  = signal{4.2, []wave{{0.05, 900, 0}, {0.02, 31, 1}}}           // V, per pot (phase-shifted)
)

// Anode-effect schedule of pot i (0-based): the k-th effect (k ≥ 0) starts aePhase(i) +
// k·aePeriod(i) seconds after start-up and lasts aeDuration(i, k) seconds.
func aePeriod(i int) float64      { return 600 + 37*float64(i) }
func aePhase(i int) float64       { return 45 + 29*float64(i) }
func aeDuration(i, k int) float64 { return float64(15 + (7*i+13*k)%106) }
func aeVoltage(i int) float64     { return 30 + float64(i%10) }
func aeIndex(i int, dt float64) (int, bool) {
	if dt < aePhase(i) {
		return 0, false
	}
	return int(math.Floor((dt - aePhase(i)) / aePeriod(i))), true
}

// AnodeEffect reports whether pot i (0-based) is in an anode effect at t.
func (pl *PotLine) AnodeEffect(i int, t time.Time) bool {
	dt := unixSeconds(t) - pl.t0
	k, ok := aeIndex(i, dt)
	return ok && dt-aePhase(i)-float64(k)*aePeriod(i) < aeDuration(i, k)
}

// potState is the pot line's process state at one instant.
type potState struct {
	current  float64
	voltages [Pots]float64
	ae       [Pots]bool
	aeCount  int
	aeLast   float64 // duration of the last finished anode effect, s
	aeSecs   float64 // anode-effect seconds of all pots since start-up
	energy   float64 // kWh
}

func (pl *PotLine) state(t time.Time) potState {
	s := unixSeconds(t)
	dt := s - pl.t0
	st := potState{current: lineCurrent.at(s)}
	lastEnd := math.Inf(-1)
	for i := range Pots {
		v := potVoltage.at(s + 71*float64(i))
		k, ok := aeIndex(i, dt)
		if ok {
			st.aeCount += k + 1
			start := aePhase(i) + float64(k)*aePeriod(i)
			d := aeDuration(i, k)
			for j := range k {
				st.aeSecs += aeDuration(i, j)
			}
			st.aeSecs += min(dt-start, d)
			if dt-start < d {
				st.ae[i] = true
				v = aeVoltage(i)
				if k > 0 { // the previous effect of this pot has finished
					pd := aeDuration(i, k-1)
					if end := start - aePeriod(i) + pd; end > lastEnd {
						lastEnd, st.aeLast = end, pd
					}
				}
			} else if end := start + d; end > lastEnd {
				lastEnd, st.aeLast = end, d
			}
		}
		st.voltages[i] = v
	}
	// Energy: line current × the pots' nominal 4.2 V, integrated exactly; the anode effects'
	// extra energy is small and left out so that the counter stays a closed form.
	st.energy = pl.e0 + (lineCurrent.integral(pl.t0, s)*4.2*Pots)/3600 // kA·V = kW; kW·s/3600 = kWh
	return st
}

// registers computes the register table at t.
func (pl *PotLine) registers(t time.Time) [potLineRegisters]uint16 {
	st := pl.state(t)
	var r [potLineRegisters]uint16
	putF := func(addr int, v float64) {
		b := math.Float32bits(float32(v))
		r[addr], r[addr+1] = uint16(b>>16), uint16(b)
	}
	putF(0, st.current)
	for i, v := range st.voltages {
		putF(2+2*i, v)
	}
	r[regAECount] = uint16(st.aeCount)                              // wraps at 2^16
	r[regAELast] = uint16(st.aeLast)                                // whole seconds
	r[regEnergy] = uint16(int64(math.Floor(st.energy/10)) & 0xFFFF) // 10 kWh units, wraps
	aeCentiMin := uint32(math.Floor(st.aeSecs / 60 * 100))
	r[regAEMinutes], r[regAEMinutes+1] = uint16(aeCentiMin>>16), uint16(aeCentiMin)
	r[regCells] = Pots
	return r
}

// ValueAt returns the exact value a client decoding point id (with its scale) reads at t.
func (pl *PotLine) ValueAt(id string, t time.Time) (reading.Value, bool) {
	regs := pl.registers(t)
	for _, p := range potLinePoints {
		if p.ID != id {
			continue
		}
		switch p.Type {
		case "float32":
			return reading.FromFloat32(math.Float32frombits(uint32(regs[p.Address])<<16 | uint32(regs[p.Address+1])))
		case "bool":
			if pl.AnodeEffect(p.Address, t) {
				return reading.FromInt64(1), true
			}
			return reading.FromInt64(0), true
		}
		v := reading.FromInt64(int64(regs[p.Address]))
		if p.Type == "uint32" {
			v = reading.FromInt64(int64(regs[p.Address])<<16 | int64(regs[p.Address+1]))
		}
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

// handler serves the pot line's register table and its per-pot anode-effect bits.
func (pl *PotLine) handler() *handler {
	return &handler{d: &pl.device, size: potLineRegisters, bitCount: Pots,
		regs: func(t time.Time) []uint16 { r := pl.registers(t); return r[:] },
		bit:  pl.AnodeEffect}
}
