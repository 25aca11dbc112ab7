package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Factor is one version of a factor record (mrv-methods.md §7): an emission factor, a net
// calorific value, a stoichiometric factor, a GWP, a lab result. Calculation code never
// holds a factor value; it takes it from here, and every derived record names the id and
// version it used. Several versions of one id may be listed; a window uses the version
// with the latest valid_from on or before the window's start (in gateway.timezone).
type Factor struct {
	ID        string   `yaml:"id"`
	Version   string   `yaml:"version"`
	Value     *Decimal `yaml:"value"`
	Divisor   *Decimal `yaml:"divisor"`    // value/divisor, for exact ratios such as 44/12; default 1
	Unit      string   `yaml:"unit"`       // see FactorUnits
	Source    string   `yaml:"source"`     // document, e.g. "IPCC 2006 Vol 2 Ch 1"
	Table     string   `yaml:"table"`      // table or section in that document
	ValidFrom string   `yaml:"valid_from"` // YYYY-MM-DD, local date
	Default   bool     `yaml:"default"`    // a published Tier 1 default: results are flagged default-factor
	GWPSet    string   `yaml:"gwp_set"`    // for GWP factors: AR4 | AR5 | AR6 | SAR
}

// Float64 returns value/divisor (for the emissions engine, which computes in float64).
func (f Factor) Float64() float64 {
	v := f.Value.Float64()
	if f.Divisor != nil {
		v /= f.Divisor.Float64()
	}
	return v
}

// ValidFromTime returns the local midnight that starts ValidFrom.
func (f Factor) ValidFromTime(loc *time.Location) (time.Time, error) {
	return time.ParseInLocation(time.DateOnly, f.ValidFrom, loc)
}

// Emission is one emission source: a stream of derived records computed by one method
// from bound tags and factor records (mrv-methods.md §2–§4).
type Emission struct {
	Name   string `yaml:"name"`   // stream name; unique across sources and emissions
	Method string `yaml:"method"` // see Methods
	// Inputs binds the method's roles to tags: role -> "<source>.<tag id>".
	Inputs map[string]string `yaml:"inputs"`
	// Factors binds the method's factor roles to factor ids: role -> factors[].id.
	Factors map[string]string `yaml:"factors"`
	// GWPSet chooses the GWP factors of a PFC method: AR4 | AR5 | AR6 | SAR (§7).
	GWPSet string `yaml:"gwp_set"`
	// MinValidFraction is the valid-hour threshold of §3.3. Default 0.80 (MRR Art. 44(2)).
	MinValidFraction *Decimal `yaml:"min_valid_fraction"`
	// Reference is the reference condition of a gas-volume fuel meter (§1.2). Required
	// when the fuel tag is a volume; unknown is refused.
	Reference *Reference `yaml:"reference"`
	// ConcentrationBasis and FlowBasis (dry | wet) of a CEMS (§3.2). Different bases need
	// an h2o input; mixing them without one is refused (basis-mismatch).
	ConcentrationBasis string `yaml:"concentration_basis"`
	FlowBasis          string `yaml:"flow_basis"`
	// Calibration maps an input role to its analyser calibration function (§3.2).
	Calibration map[string]Calibration `yaml:"calibration"`
	// Tier is the declared tier (§2.1, §3.5), 1..4; 0 = not declared.
	Tier int `yaml:"tier"`
	// Substitution of missing CEMS hours (§3.4).
	Substitution Substitution `yaml:"substitution"`
	// MaxHold is how long a rate reading is held (§3.3). Default 2 × the slowest bound
	// source's interval.
	MaxHold Duration `yaml:"max_hold"`
	// FreezeWindow flags an input whose value does not change for longer (§5). 0 = off.
	FreezeWindow Duration `yaml:"freeze_window"`
	// Shifts are the local start times of shifts, "HH:00". Default none (no shift windows).
	Shifts []string `yaml:"shifts"`
}

// Reference is a gas meter's reference condition.
type Reference struct {
	TemperatureDegC *Decimal `yaml:"temperature_degc"`
	PressureKPa     *Decimal `yaml:"pressure_kpa"`
}

// Calibration is an analyser's QAL2 function y = a + b·x (EN 14181), valid for raw values
// in [min, max].
type Calibration struct {
	Version string   `yaml:"version"`
	A       *Decimal `yaml:"a"`
	B       *Decimal `yaml:"b"`
	Min     *Decimal `yaml:"min"`
	Max     *Decimal `yaml:"max"`
}

// Substitution configures missing-hour substitution of a CEMS.
type Substitution struct {
	// Method: none (default: a missing hour is reported missing) or mrr-eq4
	// (C̄ + 2σ, MRR Annex VIII Eq. 4, flagged substituted and provisional).
	Method string `yaml:"method"`
	// Mean and Sigma, in the concentration tag's unit, replace the year-to-date
	// statistics with a representative period agreed with the authority. Both or neither.
	Mean  *Decimal `yaml:"mean"`
	Sigma *Decimal `yaml:"sigma"`
}

// Role groups of a method (see Methods).
const (
	SubstitutionNone   = "none"
	SubstitutionMRREq4 = "mrr-eq4"
)

// MethodSpec describes a calculation method: the roles an emission binds.
type MethodSpec struct {
	Section string              // mrv-methods.md section
	Inputs  map[string][]string // input role -> accepted tag units; "in_*" matches any in_ role
	Factors map[string][]string // factor role -> accepted factor units
	// Need lists requirement groups. Each is a "|"-separated list of alternatives, each
	// a "+"-joined list of roles that must all be bound; "@" marks a factor role.
	Need []string
}

var (
	unitsAmountMass = []string{"t", "t/h", "kg", "kg/h"}
	unitsFuel       = []string{"Nm3", "Sm3", "Nm3/h", "Sm3/h", "t", "t/h", "kg", "kg/h"}
	unitsFraction   = []string{"1"}
	unitsPerMass    = []string{"t CO2/t"}
	unitsGWP        = []string{"t CO2e/t"}
	unitsCToCO2     = []string{"t CO2/t C"}
)

// commonInputs are roles any method may bind: operating (a state tag, 0 = not
// operating, §3.3), production (for intensity, §4 rule 3; metal produced for the
// aluminium methods), line_current and cells (metal production estimate, §2.4), batch (a
// state tag whose change closes a batch window, §4).
var commonInputs = map[string][]string{
	"operating": {"1"}, "production": unitsAmountMass, "line_current": {"kA", "A"}, "cells": {"1"}, "batch": {"1"},
}

var commonFactors = map[string][]string{"ce_percent": {"%"}, "faraday": {"kg/(kA h)"}}

// Methods is the catalogue of calculation methods, by name.
var Methods = map[string]MethodSpec{
	"fuel": {Section: "§2.2", Inputs: map[string][]string{"fuel": unitsFuel},
		Factors: map[string][]string{"ncv": {"GJ/Nm3", "GJ/t"}, "ef": {"t CO2/TJ"}, "of": unitsFraction, "biomass_fraction": unitsFraction},
		Need:    []string{"fuel", "@ncv", "@ef"}},
	"fuel-carbon": {Section: "§2.1", Inputs: map[string][]string{"fuel": unitsFuel},
		Factors: map[string][]string{"ncv": {"GJ/Nm3", "GJ/t"}, "cc": {"t C/GJ"}, "of": unitsFraction, "c_to_co2": unitsCToCO2},
		Need:    []string{"fuel", "@ncv", "@cc", "@c_to_co2"}},
	"clinker-b": {Section: "§2.3", Inputs: map[string][]string{"clinker": unitsAmountMass, "kiln_feed": unitsAmountMass},
		Factors: map[string][]string{"ef_clinker": unitsPerMass, "cao": unitsFraction, "cao_nc": unitsFraction, "mgo": unitsFraction,
			"mgo_nc": unitsFraction, "sf_cao": unitsPerMass, "sf_mgo": unitsPerMass, "cf": unitsFraction, "feed_to_clinker": {"t/t"}},
		Need: []string{"clinker|kiln_feed+@feed_to_clinker", "@ef_clinker|@cao+@mgo+@sf_cao+@sf_mgo"}},
	"clinker-a": {Section: "§2.3", Inputs: map[string][]string{"raw_meal": unitsAmountMass},
		Factors: map[string][]string{"caco3": unitsFraction, "sf_caco3": unitsPerMass, "mgco3": unitsFraction, "sf_mgco3": unitsPerMass},
		Need:    []string{"raw_meal", "@caco3+@sf_caco3"}},
	"kiln-dust": {Section: "§2.3", Inputs: map[string][]string{"dust": unitsAmountMass},
		Factors: map[string][]string{"ef_ckd": unitsPerMass, "ef_clinker": unitsPerMass, "calcination": unitsFraction},
		Need:    []string{"dust", "@ef_ckd|@ef_clinker+@calcination"}},
	"anode-co2": {Section: "§2.4", Inputs: map[string][]string{},
		Factors: map[string][]string{"nac": {"t C/t"}, "sulphur": {"%wt"}, "ash": {"%wt"}, "c_to_co2": unitsCToCO2},
		Need:    []string{"production|line_current", "@nac", "@sulphur", "@ash", "@c_to_co2"}},
	"pfc-slope": {Section: "§2.4", Inputs: map[string][]string{"ae_minutes": {"min"}},
		Factors: map[string][]string{"sef_cf4": {"(kg CF4/t)/(AE-min/cell-day)"}, "f_c2f6": {"kg C2F6/kg CF4"},
			"gwp_cf4": unitsGWP, "gwp_c2f6": unitsGWP, "collection_efficiency": unitsFraction},
		Need: []string{"ae_minutes", "cells", "production|line_current", "@sef_cf4", "@f_c2f6", "@gwp_cf4", "@gwp_c2f6"}},
	"pfc-overvoltage": {Section: "§2.4", Inputs: map[string][]string{"aeo": {"mV"}},
		Factors: map[string][]string{"ovc": {"(kg CF4/t)/mV"}, "f_c2f6": {"kg C2F6/kg CF4"},
			"gwp_cf4": unitsGWP, "gwp_c2f6": unitsGWP, "collection_efficiency": unitsFraction},
		Need: []string{"aeo", "production|line_current", "@ovc", "@f_c2f6", "@gwp_cf4", "@gwp_c2f6", "@ce_percent"}},
	"metal-estimate": {Section: "§2.4", Inputs: map[string][]string{}, Factors: map[string][]string{},
		Need: []string{"line_current"}},
	"electricity": {Section: "§2.6", Inputs: map[string][]string{"energy": {"kWh", "MWh", "kW", "MW"}},
		Factors: map[string][]string{"ef_grid": {"t CO2/MWh"}},
		Need:    []string{"energy", "@ef_grid"}},
	"cems": {Section: "§3", Inputs: map[string][]string{"concentration": {"%vol", "ppm", "g/Nm3", "mg/Nm3"},
		"flow": {"Nm3/h", "m3/h"}, "h2o": {"%vol"}, "temperature": {"degC", "K"}, "pressure": {"kPa", "Pa"}},
		Factors: map[string][]string{},
		Need:    []string{"concentration", "flow"}},
	"steel-mass-balance": {Section: "§2.5", Inputs: map[string][]string{"in_*": unitsAmountMass, "out_*": unitsAmountMass},
		Factors: map[string][]string{"cc_*": {"t C/t"}, "c_to_co2": unitsCToCO2},
		Need:    []string{"@c_to_co2"}},
}

// GWP sets of §7.
var gwpSets = []string{"AR4", "AR5", "AR6", "SAR"}

// MethodNames lists the methods, sorted.
func MethodNames() []string { return slices.Sorted(maps.Keys(Methods)) }

// InputUnits returns the tag units accepted for role in method m, and whether the role exists.
func (m MethodSpec) InputUnits(role string) ([]string, bool) {
	if u, ok := commonInputs[role]; ok {
		return u, true
	}
	return lookupRole(m.Inputs, role)
}

// FactorUnits returns the factor units accepted for role in method m, and whether the role exists.
func (m MethodSpec) FactorUnits(role string) ([]string, bool) {
	if u, ok := commonFactors[role]; ok {
		return u, true
	}
	return lookupRole(m.Factors, role)
}

func lookupRole(roles map[string][]string, role string) ([]string, bool) {
	if u, ok := roles[role]; ok {
		return u, true
	}
	for k, u := range roles {
		if p, ok := strings.CutSuffix(k, "*"); ok && strings.HasPrefix(role, p) && len(role) > len(p) {
			return u, true
		}
	}
	return nil, false
}

// DefaultMinValidFraction is the MRR valid-hour threshold (Art. 44(2), §3.3).
const DefaultMinValidFraction = "0.8"

// fillEmissions sets the defaults of emissions[] (called from fill, after the sources).
func (c *Config) fillEmissions(in func(path string) bool) {
	intervals := map[string]Duration{}
	for _, s := range c.Sources {
		intervals[s.Name] = s.Interval
	}
	for i := range c.Emissions {
		e := &c.Emissions[i]
		p := fmt.Sprintf("emissions[%d].", i)
		if e.MinValidFraction == nil {
			v, _ := reading.ParseValue(DefaultMinValidFraction)
			e.MinValidFraction = &Decimal{v}
		}
		setDefault(in, p+"substitution.method", &e.Substitution.Method, SubstitutionNone)
		if !in(p + "max_hold") {
			var slowest Duration
			for _, tag := range e.Inputs {
				src, _, _ := strings.Cut(tag, ".")
				slowest = max(slowest, intervals[src])
			}
			e.MaxHold = 2 * slowest
		}
	}
}

// checkEmissions validates factors[] and emissions[] (called from check).
func (c *Config) checkEmissions(v *checker) {
	loc, _ := time.LoadLocation(c.Gateway.Timezone)
	if loc == nil {
		loc = time.UTC
	}
	type fkey struct{ id, version string }
	factors := map[string][]*Factor{}
	seenF := map[fkey]int{}
	for i := range c.Factors {
		f := &c.Factors[i]
		p := fmt.Sprintf("factors[%d]", i)
		if !validTagID(f.ID) {
			v.add(p+".id", "%q must match [a-z0-9][a-z0-9_-]* (at most 64 bytes)", f.ID)
		}
		required(v, p+".version", f.Version)
		if j, dup := seenF[fkey{f.ID, f.Version}]; dup {
			v.add(p+".version", "%q of %q is already factors[%d]", f.Version, f.ID, j)
		}
		seenF[fkey{f.ID, f.Version}] = i
		if f.Value == nil {
			v.add(p+".value", "is required")
		}
		if f.Divisor != nil && f.Divisor.Mantissa <= 0 {
			v.add(p+".divisor", "%s must be > 0", f.Divisor)
		}
		required(v, p+".unit", f.Unit)
		required(v, p+".source", f.Source)
		if _, err := f.ValidFromTime(loc); err != nil {
			v.add(p+".valid_from", "%q is not a date YYYY-MM-DD", f.ValidFrom)
		}
		if f.GWPSet != "" {
			oneOf(v, p+".gwp_set", f.GWPSet, gwpSets...)
		}
		if f.Unit == "%" && f.Value != nil && f.Value.Cmp(reading.FromInt64(1)) <= 0 {
			// §2.4: current efficiency is a percentage; 0.95 is a fraction passed by mistake.
			v.add(p+".value", "%s %% is not a percentage > 1 (a fraction passed by mistake?)", f.Value)
		}
		factors[f.ID] = append(factors[f.ID], f)
	}

	tags := map[string]*Tag{}
	intervals := map[string]Duration{}
	streams := map[string]string{"agent": "the agent's own stream"}
	for i := range c.Sources {
		s := &c.Sources[i]
		streams[s.Name] = fmt.Sprintf("sources[%d]", i)
		intervals[s.Name] = s.Interval
		for j := range s.Tags {
			tags[s.Name+"."+s.Tags[j].ID] = &s.Tags[j]
		}
	}
	for i := range c.Emissions {
		e := &c.Emissions[i]
		p := fmt.Sprintf("emissions[%d]", i)
		if segment(v, p+".name", e.Name) {
			if other, dup := streams[e.Name]; dup {
				v.add(p+".name", "%q is already the name of %s", e.Name, other)
			}
			streams[e.Name] = p
		}
		e.check(v, p, tags, factors)
	}
}

func (e *Emission) check(v *checker, p string, tags map[string]*Tag, factors map[string][]*Factor) {
	m, ok := Methods[e.Method]
	if !ok {
		if e.Method == "" {
			v.add(p+".method", "is required (one of %s)", strings.Join(MethodNames(), ", "))
		} else {
			v.add(p+".method", "%q is not one of %s", e.Method, strings.Join(MethodNames(), ", "))
		}
		return
	}
	for _, role := range slices.Sorted(maps.Keys(e.Inputs)) {
		rp := p + ".inputs." + role
		units, ok := m.InputUnits(role)
		if !ok {
			v.add(rp, "is not an input of method %s", e.Method)
			continue
		}
		tag, ok := tags[e.Inputs[role]]
		if !ok {
			v.add(rp, "%q is not a configured tag (<source>.<tag id>)", e.Inputs[role])
			continue
		}
		if !slices.Contains(units, tag.Unit) {
			v.add(rp, "%s has unit %s; %s needs one of %s", e.Inputs[role], tag.Unit, role, strings.Join(units, ", "))
		}
		if role == "operating" || role == "batch" || role == "cells" {
			continue
		}
		if strings.HasSuffix(tag.Unit, "/h") || tag.Unit == "kW" || tag.Unit == "MW" || tag.Unit == "kA" || tag.Unit == "A" {
			if tag.Kind == "counter" {
				v.add(rp, "%s is a counter, but its unit %s is a rate", e.Inputs[role], tag.Unit)
			}
		}
	}
	for _, role := range slices.Sorted(maps.Keys(e.Factors)) {
		rp := p + ".factors." + role
		units, ok := m.FactorUnits(role)
		if !ok {
			v.add(rp, "is not a factor of method %s", e.Method)
			continue
		}
		fs, ok := factors[e.Factors[role]]
		if !ok {
			v.add(rp, "%q is not the id of any factors[] record", e.Factors[role])
			continue
		}
		for _, f := range fs {
			if !slices.Contains(units, f.Unit) {
				v.add(rp, "%s version %s has unit %q; %s needs one of %q", f.ID, f.Version, f.Unit, role, units)
			}
			if strings.HasPrefix(role, "gwp_") && f.GWPSet != e.GWPSet {
				v.add(rp, "%s version %s is GWP set %q, but gwp_set is %q", f.ID, f.Version, f.GWPSet, e.GWPSet)
			}
		}
	}
	has := func(r string) bool {
		if f, ok := strings.CutPrefix(r, "@"); ok {
			_, ok := e.Factors[f]
			return ok
		}
		_, ok := e.Inputs[r]
		return ok
	}
	for _, need := range m.Need {
		met := false
		for alt := range strings.SplitSeq(need, "|") {
			all := true
			for r := range strings.SplitSeq(alt, "+") {
				all = all && has(r)
			}
			met = met || all
		}
		if !met {
			v.add(p, "method %s needs %s (%s: \"@\" marks a factor)", e.Method, strings.ReplaceAll(need, "|", " or "), m.Section)
		}
	}
	if has("line_current") {
		for _, r := range []string{"cells", "@ce_percent", "@faraday"} {
			if !has(r) {
				v.add(p, "line_current (metal production estimate, §2.4) needs %s", r)
			}
		}
	}
	for role := range e.Inputs {
		if x, ok := strings.CutPrefix(role, "in_"); ok && !has("@cc_"+x) {
			v.add(p+".inputs."+role, "needs factor cc_%s (carbon content)", x)
		}
		if x, ok := strings.CutPrefix(role, "out_"); ok && !has("@cc_"+x) {
			v.add(p+".inputs."+role, "needs factor cc_%s (carbon content)", x)
		}
	}
	isPFC := strings.HasPrefix(e.Method, "pfc-")
	switch {
	case isPFC:
		oneOf(v, p+".gwp_set", e.GWPSet, gwpSets...)
	case e.GWPSet != "":
		v.add(p+".gwp_set", "only applies to the pfc methods")
	}

	// §1.2: a gas-volume meter declares its reference conditions; unknown is refused.
	fuelUnit := ""
	if t, ok := tags[e.Inputs["fuel"]]; ok {
		fuelUnit = t.Unit
	}
	gas := strings.HasPrefix(fuelUnit, "Nm3") || strings.HasPrefix(fuelUnit, "Sm3")
	switch {
	case gas && (e.Reference == nil || e.Reference.TemperatureDegC == nil || e.Reference.PressureKPa == nil):
		v.add(p+".reference", "%s is a gas volume: declare its reference temperature_degc and pressure_kpa (§1.2)", e.Inputs["fuel"])
	case gas:
		if e.Reference.PressureKPa.Mantissa <= 0 {
			v.add(p+".reference.pressure_kpa", "%s must be > 0", e.Reference.PressureKPa)
		}
		if e.Reference.TemperatureDegC.Cmp(reading.NewValue(-27315, -2)) <= 0 {
			v.add(p+".reference.temperature_degc", "%s is at or below absolute zero", e.Reference.TemperatureDegC)
		}
		if strings.HasPrefix(fuelUnit, "Nm3") && (e.Reference.TemperatureDegC.Mantissa != 0 || e.Reference.PressureKPa.Cmp(reading.NewValue(101325, -3)) != 0) {
			v.add(p+".reference", "%s is in Nm3 (0 °C, 101.325 kPa) but reference says %s °C, %s kPa: use Sm3", e.Inputs["fuel"], e.Reference.TemperatureDegC, e.Reference.PressureKPa)
		}
		for _, f := range factors[e.Factors["ncv"]] {
			if f.Unit != "GJ/Nm3" {
				v.add(p+".factors.ncv", "%s version %s is in %s; a gas volume needs GJ/Nm3", f.ID, f.Version, f.Unit)
			}
		}
	case e.Reference != nil:
		v.add(p+".reference", "only applies to a gas-volume fuel input")
	case fuelUnit != "":
		for _, f := range factors[e.Factors["ncv"]] {
			if f.Unit != "GJ/t" {
				v.add(p+".factors.ncv", "%s version %s is in %s; a fuel mass needs GJ/t", f.ID, f.Version, f.Unit)
			}
		}
	}

	if e.Method == "cems" {
		cb := oneOf(v, p+".concentration_basis", e.ConcentrationBasis, "dry", "wet")
		fb := oneOf(v, p+".flow_basis", e.FlowBasis, "dry", "wet")
		if cb && fb && e.ConcentrationBasis != e.FlowBasis && !has("h2o") {
			v.add(p+".inputs", "concentration is %s and flow is %s: an h2o input is needed to convert (basis-mismatch, §3.2)", e.ConcentrationBasis, e.FlowBasis)
		}
		if t, ok := tags[e.Inputs["flow"]]; ok && t.Unit == "m3/h" && (!has("temperature") || !has("pressure")) {
			v.add(p+".inputs", "flow %s is at actual conditions: temperature and pressure inputs are needed (§1.2)", e.Inputs["flow"])
		}
		oneOf(v, p+".substitution.method", e.Substitution.Method, SubstitutionNone, SubstitutionMRREq4)
	} else {
		if e.ConcentrationBasis != "" || e.FlowBasis != "" {
			v.add(p+".concentration_basis", "only applies to method cems")
		}
		if e.Substitution.Method != SubstitutionNone && e.Substitution.Method != "" {
			v.add(p+".substitution.method", "only applies to method cems (calculation gaps are flagged substitution-required)")
		}
	}
	if (e.Substitution.Mean == nil) != (e.Substitution.Sigma == nil) {
		v.add(p+".substitution.mean", "mean and sigma must be given together")
	}
	if s := e.Substitution.Sigma; s != nil && s.Mantissa < 0 {
		v.add(p+".substitution.sigma", "%s must not be negative", s)
	}
	for _, role := range slices.Sorted(maps.Keys(e.Calibration)) {
		cal := e.Calibration[role]
		cp := p + ".calibration." + role
		if _, ok := e.Inputs[role]; !ok {
			v.add(cp, "%s is not a bound input", role)
		}
		required(v, cp+".version", cal.Version)
		if cal.A == nil || cal.B == nil {
			v.add(cp, "a and b are required (y = a + b·x)")
		} else if cal.B.Mantissa == 0 {
			v.add(cp+".b", "must not be 0")
		}
		if cal.Min != nil && cal.Max != nil && cal.Min.Cmp(cal.Max.Value) >= 0 {
			v.add(cp+".min", "%s must be less than max (%s)", cal.Min, cal.Max)
		}
	}
	if f := e.MinValidFraction; f != nil && (f.Mantissa <= 0 || f.Cmp(reading.FromInt64(1)) > 0) {
		v.add(p+".min_valid_fraction", "%s is out of range (0, 1]", f)
	}
	if e.Tier < 0 || e.Tier > 4 {
		v.add(p+".tier", "%d is out of range 0..4", e.Tier)
	}
	if len(e.Inputs) > 0 && e.MaxHold <= 0 {
		v.add(p+".max_hold", "%s must be > 0", e.MaxHold)
	}
	seen := map[string]bool{}
	for i, s := range e.Shifts {
		sp := fmt.Sprintf("%s.shifts[%d]", p, i)
		t, err := time.Parse("15:04", s)
		if err != nil || t.Minute() != 0 {
			v.add(sp, "%q is not a local start time \"HH:00\"", s)
		}
		if seen[s] {
			v.add(sp, "%q is listed twice", s)
		}
		seen[s] = true
	}
}
