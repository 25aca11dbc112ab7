package emissions

import (
	"fmt"
	"math"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// CEMS channels: aggregates after the roles, built per sample in the order of §3.2.
const (
	chCRaw       = iota // concentration, calibrated, g/Nm3 on the analyser's basis
	chCFlow             // concentration on the flow's basis, g/Nm3
	chQ                 // flow at standard conditions, on its basis, Nm3/h
	cemsChannels        // number of channels
)

// outageAlarm is MRR Art. 45(1): a CEMS component out of operation for more than 5
// consecutive days must be reported (§3.4).
const outageAlarm = 5 * 24 * nsHour

type cemsSpec struct {
	conc, flow, h2o, temp, press int // role indexes; -1 when not bound
	needH                        bool
	concWet                      bool
	actual                       bool // flow at actual conditions (m3/h)
	tempDegC                     bool
	subMean, subSD               float64
	hasSub                       bool
	eq4                          bool
}

func newCEMS(j *job, e config.Emission) (*cemsSpec, error) {
	ix := func(r string) int {
		if i, ok := j.idx[r]; ok {
			return i
		}
		return -1
	}
	cs := &cemsSpec{conc: ix("concentration"), flow: ix("flow"), h2o: ix("h2o"), temp: ix("temperature"), press: ix("pressure"),
		concWet: e.ConcentrationBasis == "wet", eq4: e.Substitution.Method == config.SubstitutionMRREq4}
	if cs.conc < 0 || cs.flow < 0 {
		return nil, fmt.Errorf("cems needs concentration and flow inputs")
	}
	if e.ConcentrationBasis != "dry" && e.ConcentrationBasis != "wet" || e.FlowBasis != "dry" && e.FlowBasis != "wet" {
		return nil, fmt.Errorf("cems needs concentration_basis and flow_basis (dry or wet)")
	}
	cs.needH = e.ConcentrationBasis != e.FlowBasis
	if cs.needH && cs.h2o < 0 {
		// §3.2: never mix wet and dry.
		return nil, fmt.Errorf("%s concentration with %s flow and no h2o input: %s", e.ConcentrationBasis, e.FlowBasis, reading.DerivedBasisMismatch.Names()[0])
	}
	// §1.3: mass concentration [g/Nm3] = volume fraction × M / V_m × 1000.
	gPerNm3PerFraction := molarMassCO2 / molarVolumeL * 1000
	cr := &j.roles[cs.conc]
	switch cr.unit {
	case "%vol":
		cr.scale = gPerNm3PerFraction / percent
	case "ppm":
		cr.scale = gPerNm3PerFraction / 1e6
	case "mg/Nm3":
		cr.scale = 1e-3
	}
	cr.perHour = false
	j.roles[cs.flow].perHour = false
	if cs.h2o >= 0 {
		j.roles[cs.h2o].scale = 1 / percent
	}
	cs.actual = j.roles[cs.flow].unit == "m3/h"
	if cs.actual && (cs.temp < 0 || cs.press < 0) {
		return nil, fmt.Errorf("flow at actual conditions needs temperature and pressure inputs")
	}
	if cs.temp >= 0 {
		cs.tempDegC = j.roles[cs.temp].unit == "degC"
	}
	if cs.press >= 0 && j.roles[cs.press].unit == "Pa" {
		j.roles[cs.press].scale = 1e-3
	}
	if s := e.Substitution; s.Mean != nil && s.Sigma != nil {
		cs.subMean, cs.subSD, cs.hasSub = s.Mean.Float64()*cr.scale, s.Sigma.Float64()*cr.scale, true
	}
	return cs, nil
}

// held returns a role's held value at time t, and whether it is valid then.
func (j *job) held(i int, t int64) (float64, bool) {
	if i < 0 {
		return 0, false
	}
	rs := &j.st.Roles[i]
	if !rs.Has || !rs.OK || t >= rs.T+j.maxHold || t < rs.T {
		return 0, false
	}
	return rs.V, true
}

// creditCEMS credits the channels over [from, to), split where a held value expires, so
// each piece normalises simultaneous values (§3.2): calibration (in apply), flow to
// standard conditions with T and P of the same instant, concentration to the flow's basis.
func (c *Calculator) creditCEMS(j *job, from, to int64) {
	cs := j.cems
	cuts := []int64{from}
	for _, i := range []int{cs.conc, cs.flow, cs.h2o, cs.temp, cs.press} {
		if i >= 0 {
			if u := j.st.Roles[i].T + j.maxHold; j.st.Roles[i].Has && u > from && u < to {
				cuts = append(cuts, u)
			}
		}
	}
	cuts = append(cuts, to)
	sortInt64(cuts)
	n := len(j.roles)
	for k := 0; k+1 < len(cuts); k++ {
		s, e := cuts[k], cuts[k+1]
		if e <= s {
			continue
		}
		cRaw, okC := j.held(cs.conc, s)
		h, okH := j.held(cs.h2o, s)
		if okC {
			c.credit(j, n+chCRaw, s, e, piece{valid: true, value: cRaw})
		}
		if okC && (!cs.needH || okH) {
			cf := cRaw
			switch {
			case cs.needH && cs.concWet:
				cf = cRaw / (1 - h) // C_dry = C_wet / (1 − h), §1.2
			case cs.needH:
				cf = cRaw * (1 - h) // C_wet = C_dry × (1 − h)
			}
			if h < 1 || !cs.needH {
				c.credit(j, n+chCFlow, s, e, piece{valid: true, value: cf})
			}
		}
		q, okQ := j.held(cs.flow, s)
		if okQ && cs.actual {
			tv, okT := j.held(cs.temp, s)
			p, okP := j.held(cs.press, s)
			if cs.tempDegC {
				tv += stdTemperatureK
			}
			okQ = okT && okP && tv > 0
			// §1.2: Q_N = Q_act × (273.15 / T_K) × (P_abs / 101.325).
			q = q * stdTemperatureK / tv * p / stdPressureKPa
		}
		if okQ {
			c.credit(j, n+chQ, s, e, piece{valid: true, value: q})
		}
	}
}

func sortInt64(a []int64) {
	for i := 1; i < len(a); i++ {
		for k := i; k > 0 && a[k] < a[k-1]; k-- {
			a[k], a[k-1] = a[k-1], a[k]
		}
	}
}

// evalCEMS computes a CEMS window: Em [t] = C̄ [g/Nm3] × Q̄ [Nm3/h] × h × 10^-6 from the
// means of the valid points of each parameter (§3.1 Eq. 1, pro rata, never scaled by
// coverage). An hour is valid when every parameter has at least min_valid_fraction of its
// points (§3.3); a missing concentration hour is substituted by C̄ + 2σ when configured
// (§3.4 Eq. 4, flagged substituted and provisional); anything else is missing with
// substitution-required.
func (c *Calculator) evalCEMS(x *evalCtx, s *summary, kind string) {
	j, cs, b := x.j, x.j.cems, x.b
	n := len(j.roles)
	aC, aCF, aQ := &b.Aggs[n+chCRaw], &b.Aggs[n+chCFlow], &b.Aggs[n+chQ]
	covC, covCF, covQ := x.cov(aC), x.cov(aCF), x.cov(aQ)
	s.Cov = min(covCF, covQ)
	hours := x.expS / secondsPerHour
	if x.expS <= 0 {
		// §3.3: a whole window not operating emits 0, flagged not-operating (not missing).
		s.Values, s.Valid = []nv{{"co2", 0, "t"}}, true
		return
	}
	value := func(cf float64) {
		q := aQ.mean()
		s.Values = []nv{{"co2", cf * q * hours / gPerTonne, "t"}, {"concentration", cf, "g/Nm3"}, {"flow", q, "Nm3/h"}}
	}
	if kind != reading.WindowHour {
		if aCF.ValidS > 0 && aQ.ValidS > 0 {
			value(aCF.mean())
			s.Valid = s.Cov >= 1-covEps
			if !s.Valid {
				x.flags |= reading.DerivedPartial
			}
		} else {
			x.flags |= reading.DerivedMissing
		}
		return
	}
	thr := j.minValid
	first := !b.Emitted && b.Rev == 0 && !c.live
	// Art. 45(1): track each parameter's last valid hour; alarm beyond 5 days.
	for _, i := range []int{cs.conc, cs.flow, cs.h2o, cs.temp, cs.press} {
		if i < 0 || c.live {
			continue
		}
		if x.cov(&b.Aggs[i]) >= thr {
			j.st.LastValid[i] = b.End
		} else if _, ok := j.st.LastValid[i]; !ok {
			j.st.LastValid[i] = b.Start
		}
		if b.End-j.st.LastValid[i] > outageAlarm {
			x.flags |= reading.DerivedOutage5Days
		}
	}
	switch {
	case covC >= thr && covCF >= thr && covQ >= thr:
		value(aCF.mean())
		s.Valid = true
		if s.Cov < 1-covEps {
			x.flags |= reading.DerivedPartial
		}
		if first {
			if y := c.clk.year(b.Start); j.st.YTD.Year != y {
				j.st.YTD = welford{Year: y}
			}
			j.st.YTD.add(aC.mean())
		}
	case covC < thr && covQ >= thr && cs.eq4:
		mean, sd := j.st.YTD.Mean, j.st.YTD.sd()
		if cs.hasSub {
			mean, sd = cs.subMean, cs.subSD
		}
		sub := mean + 2*sd
		if cs.needH {
			hA := &b.Aggs[cs.h2o]
			if x.cov(hA) < thr {
				sub = math.NaN()
			} else if cs.concWet {
				sub /= 1 - hA.mean()
			} else {
				sub *= 1 - hA.mean()
			}
		}
		if math.IsNaN(sub) || math.IsInf(sub, 0) {
			x.flags |= reading.DerivedMissing | reading.DerivedSubstitutionRequired
			return
		}
		value(sub)
		x.flags |= reading.DerivedSubstituted | reading.DerivedProvisional
		s.Substitution = "MRR_EQ4"
		s.Counts.Substituted = 1
	default:
		x.flags |= reading.DerivedMissing | reading.DerivedSubstitutionRequired
	}
}
