package emissions

import (
	"math"
	"slices"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Physical constants (mrv-methods.md §1.2, §1.3). They are not emission factors: they
// define the units. A site that must use another molar volume needs a monitoring-plan
// reference and a code change, on purpose.
const (
	stdTemperatureK = 273.15   // K, MRR Art. 3 standard conditions
	stdPressureKPa  = 101.325  // kPa
	molarVolumeL    = 22.41397 // L/mol at 273.15 K, 101.325 kPa (CODATA)
	molarMassCO2    = 44.0095  // g/mol
	secondsPerDay   = 86400.0  // AE minutes per cell-day (§2.4)
	covEps          = 1e-9     // coverage this close to 1 is complete
	percent         = 100.0    // %wt and % to fractions
	kgPerTonne      = 1000.0   // t = kg / 1000
	gjPerTJ         = 1000.0   // TJ = GJ / 1000
	gPerTonne       = 1e6      // t = g × 10^-6 (§3.1 Eq. 1)
	secondsPerHour  = 3600.0   // s
	ceRejectPercent = 1.0      // §2.4: a current efficiency ≤ 1.0 is a fraction passed by mistake
)

// evalCtx evaluates one window of one job.
type evalCtx struct {
	c       *Calculator
	j       *job
	b       *bucket
	expS    float64
	flags   reading.DerivedFlag
	factors []reading.FactorRef
}

// factor returns the version of a factor role valid at the window's start (§7), and
// records its id and version; NaN when there is none (flag no-factor).
func (x *evalCtx) factor(role string) float64 {
	vs := x.j.factors[role]
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].from <= x.b.Start {
			x.factors = append(x.factors, vs[i].ref)
			if vs[i].def {
				x.flags |= reading.DerivedDefaultFactor
			}
			return vs[i].value
		}
	}
	x.flags |= reading.DerivedNoFactor
	return math.NaN()
}

func (x *evalCtx) hasFactor(role string) bool { _, ok := x.j.factors[role]; return ok }

// optFactor returns the factor, or def when the role is not bound (a factor that
// defaults to the identity: OF, CF = 1 at Tier 1, §2.1).
func (x *evalCtx) optFactor(role string, def float64) float64 {
	if !x.hasFactor(role) {
		return def
	}
	return x.factor(role)
}

func (x *evalCtx) has(role string) bool { _, ok := x.j.idx[role]; return ok }

func (x *evalCtx) agg(role string) *agg {
	i, ok := x.j.idx[role]
	if !ok {
		return &agg{}
	}
	return &x.b.Aggs[i]
}

func (x *evalCtx) amount(role string) float64 { return x.agg(role).Amount }
func (x *evalCtx) mean(role string) float64   { return x.agg(role).mean() }

func (x *evalCtx) cov(a *agg) float64 {
	if x.expS <= 0 {
		return 1
	}
	return min(1, a.ValidS/x.expS)
}

// production returns the metal or clinker produced in the window, in t: measured, or
// estimated from line current (§2.4: MP = 0.3355727 kg/(kA·h) × I × t × CE/100 × N, the
// constant a factor record), flagged estimated. ok is false without either.
func (x *evalCtx) production() (t, cov float64, ok bool) {
	if x.has("production") {
		a := x.agg("production")
		return a.Amount, x.cov(a), true
	}
	if x.has("line_current") {
		ia, na := x.agg("line_current"), x.agg("cells")
		x.flags |= reading.DerivedEstimated
		mp := x.factor("faraday") * ia.Amount * na.mean() * x.factor("ce_percent") / percent / kgPerTonne
		if na.ValidS == 0 {
			mp = 0
		}
		return mp, min(x.cov(ia), x.cov(na)), true
	}
	return 0, 0, false
}

// eval computes a window's result from its aggregates.
func (c *Calculator) eval(j *job, b *bucket, kind string) *summary {
	x := &evalCtx{c: c, j: j, b: b}
	durS := float64(b.End-b.Start) / nsSecond
	notOp := 0.0
	if j.cfg.Inputs["operating"] != "" {
		notOp = x.agg("operating").ZeroS
	}
	x.expS = max(0, durS-notOp)
	s := &summary{ExpS: x.expS, Inputs: slices.Clone(b.Inputs)}
	cov, missing := 1.0, false
	for i := range j.roles {
		a := &b.Aggs[i]
		x.flags |= reading.DerivedFlag(a.Flags)
		if !j.roles[i].required {
			continue
		}
		cv := x.cov(a)
		cov = min(cov, cv)
		if a.ValidS == 0 && x.expS > 0 {
			missing = true
		}
		exp := uint64(math.Round(x.expS / j.roles[i].interval.Seconds()))
		s.Counts.Expected += exp
		s.Counts.Valid += uint64(a.NValid)
		s.Counts.Uncertain += uint64(a.NUnc)
		s.Counts.Bad += uint64(a.NBad)
		if got := uint64(a.NValid + a.NUnc + a.NBad); got < exp {
			s.Counts.Missing += exp - got
		}
		if r := j.roles[i]; r.cal != nil {
			x.factors = append(x.factors, r.cal.ref)
		}
	}
	if notOp > 0 {
		x.flags |= reading.DerivedNotOperating
	}
	if j.cems != nil {
		c.evalCEMS(x, s, kind)
	} else {
		s.Cov = cov
		if missing {
			x.flags |= reading.DerivedMissing
		} else {
			s.Values = j.method(x)
			s.Valid = cov >= 1-covEps
			if !s.Valid {
				x.flags |= reading.DerivedPartial
				if kind != reading.WindowMinute && cov < j.minValid {
					x.flags |= reading.DerivedSubstitutionRequired // Art. 66: an operator procedure is needed
				}
			}
		}
		if x.expS <= 0 {
			s.Valid = true
		}
	}
	// Intensity over matched intervals only (§4 rule 3).
	if j.cfg.Method != "clinker-b" && j.cfg.Method != "metal-estimate" {
		if p, pcov, ok := x.production(); ok {
			s.P, s.HasP = p, true
			e, hasE := s.primary()
			switch {
			case kind == reading.WindowHour && j.additive:
				s.MatchedE, s.MatchedP = b.MatchedE, b.MatchedP
			case hasE && pcov >= 1-covEps && (s.Valid || s.Substitution != ""):
				s.MatchedE, s.MatchedP = e, p
			}
		}
	}
	if s.HasP {
		s.Values = append(s.Values, nv{"production", s.P, "t"}, nv{"production_matched", s.MatchedP, "t"})
		if s.MatchedP > 0 {
			s.Values = append(s.Values, nv{"intensity", s.MatchedE / s.MatchedP, "t/t"})
		}
	}
	s.Flags = uint32(x.flags)
	s.Factors = sortRefs(x.factors)
	return s
}

// method evaluates the job's formula on the window's amounts and means; the first value
// is the primary result (t CO2, or t CO2e for PFCs).
func (j *job) method(x *evalCtx) []nv {
	switch j.cfg.Method {
	case "fuel":
		// §2.2: Em = V_N (or m) × NCV × EF × OF; biomass share reported apart (§2.1).
		q := x.amount("fuel")
		gj := q * x.factor("ncv")
		co2 := gj / gjPerTJ * x.factor("ef") * x.optFactor("of", 1)
		if x.hasFactor("biomass_fraction") {
			bf := x.factor("biomass_fraction")
			return []nv{{"co2", co2 * (1 - bf), "t"}, {"co2_biomass", co2 * bf, "t"}, {"energy", gj, "GJ"}}
		}
		return []nv{{"co2", co2, "t"}, {"energy", gj, "GJ"}}
	case "fuel-carbon":
		// §2.1 (China): Em = FC × NCV × CC × OF × 44/12 (the C→CO2 factor a record, §1.4).
		gj := x.amount("fuel") * x.factor("ncv")
		return []nv{{"co2", gj * x.factor("cc") * x.optFactor("of", 1) * x.factor("c_to_co2"), "t"}, {"energy", gj, "GJ"}}
	case "clinker-b":
		// §2.3 method B: Em = M_cli × EF_cli × CF; EF_cli by default factor or composition.
		var m float64
		if x.has("clinker") {
			m = x.amount("clinker")
		} else {
			m = x.amount("kiln_feed") / x.factor("feed_to_clinker")
			x.flags |= reading.DerivedDerived
		}
		var ef float64
		if x.hasFactor("ef_clinker") {
			ef = x.factor("ef_clinker")
		} else {
			ef = x.factor("sf_cao")*(x.factor("cao")-x.optFactor("cao_nc", 0)) + x.factor("sf_mgo")*(x.factor("mgo")-x.optFactor("mgo_nc", 0))
		}
		return []nv{{"co2", m * ef * x.optFactor("cf", 1), "t"}, {"clinker", m, "t"}}
	case "clinker-a":
		// §2.3 method A: Em = Σ M_raw × carbonate content × stoichiometric EF.
		m := x.amount("raw_meal")
		ef := x.factor("caco3") * x.factor("sf_caco3")
		if x.hasFactor("mgco3") {
			ef += x.factor("mgco3") * x.factor("sf_mgco3")
		}
		return []nv{{"co2", m * ef, "t"}, {"raw_meal", m, "t"}}
	case "kiln-dust":
		// §2.3 CKD: EF_CKD = (EF/(1+EF) × d) / (1 − EF/(1+EF) × d), or a fixed factor.
		var ef float64
		if x.hasFactor("ef_ckd") {
			ef = x.factor("ef_ckd")
		} else {
			e := x.factor("ef_clinker")
			r := e / (1 + e) * x.factor("calcination")
			ef = r / (1 - r)
		}
		m := x.amount("dust")
		return []nv{{"co2", m * ef, "t"}, {"dust", m, "t"}}
	case "anode-co2":
		// §2.4 prebake: E = NAC × MP × (100 − S_a − Ash_a)/100 × 44/12 (an operational
		// estimate; the EU ETS figure is a carbon mass balance).
		mp, _, _ := x.production()
		return []nv{{"co2", x.factor("nac") * mp * (percent - x.factor("sulphur") - x.factor("ash")) / percent * x.factor("c_to_co2"), "t"}}
	case "pfc-slope":
		// §2.4: AEM = Σ AE min / (cells × days); CF4 [kg] = SEF × AEM × MP; C2F6 = CF4 × F.
		mp, _, _ := x.production()
		days := x.expS / secondsPerDay
		aem := 0.0
		if cells := x.mean("cells"); days > 0 && cells > 0 {
			aem = x.amount("ae_minutes") / (cells * days)
		}
		return pfc(x, x.factor("sef_cf4")*aem*mp)
	case "pfc-overvoltage":
		// §2.4: CF4 [t] = OVC × (AEO / CE) × MP × 0.001, CE in percent (never ≤ 1.0).
		mp, _, _ := x.production()
		ce := x.factor("ce_percent")
		if ce <= ceRejectPercent {
			x.flags |= reading.DerivedMissing
			return nil
		}
		return pfc(x, x.factor("ovc")*(x.mean("aeo")/ce)*mp)
	case "electricity":
		// §2.6: Em = E [MWh] × EF_grid [t CO2/MWh] (location-based).
		mwh := x.amount("energy")
		return []nv{{"co2", mwh * x.factor("ef_grid"), "t"}, {"energy", mwh, "MWh"}}
	case "metal-estimate":
		mp, _, _ := x.production()
		return []nv{{"metal", mp, "t"}}
	case "steel-mass-balance":
		// §2.5: Em = 3.664 × (Σ AD_in × CC_in − Σ AD_out × CC_out).
		var c float64
		for _, r := range j.roles {
			if n, ok := cutPrefix(r.name, "in_"); ok {
				c += x.amount(r.name) * x.factor("cc_"+n)
			} else if n, ok := cutPrefix(r.name, "out_"); ok {
				c -= x.amount(r.name) * x.factor("cc_"+n)
			}
		}
		return []nv{{"co2", c * x.factor("c_to_co2"), "t"}, {"carbon", c, "t"}}
	}
	return nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// pfc completes the PFC methods from CF4 in kg: C2F6 = CF4 × F_C2F6; a collection
// efficiency, when bound, scales ducted to total; CO2e = Σ gas × GWP of the regime's set.
func pfc(x *evalCtx, cf4kg float64) []nv {
	if x.hasFactor("collection_efficiency") {
		cf4kg /= x.factor("collection_efficiency")
	}
	c2f6kg := cf4kg * x.factor("f_c2f6")
	co2e := (cf4kg*x.factor("gwp_cf4") + c2f6kg*x.factor("gwp_c2f6")) / kgPerTonne
	return []nv{{"co2e", co2e, "t"}, {"cf4", cf4kg, "kg"}, {"c2f6", c2f6kg, "kg"}}
}
