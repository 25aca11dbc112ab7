package emissions

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// Calculator turns readings into emission results (see the package documentation).
type Calculator struct {
	clk    clock
	jobs   []*job
	byTag  map[string][]binding
	st     calcState
	srcIdx map[srcKey]int
	out    []Result
	live   bool // evaluating for Live: no side effects on the state
}

type binding struct{ job, role int }

// role is one bound input of an emission: its tag and how to read it.
type role struct {
	name     string
	tag      string
	unit     string
	counter  bool
	state    bool    // operating, batch, cells: a state or count, never integrated
	scale    float64 // calibrated value -> base unit (t, Nm3 at 0 °C, MWh, min, kA, g/Nm3, ...)
	perHour  bool    // a rate of an amount (t/h, kW): amount = value × hours
	rollover reading.Value
	maxRate  float64 // counter units per second
	interval time.Duration
	cal      *calib
	required bool // counts towards coverage
}

type calib struct {
	a, b           float64
	min, max       float64
	hasMin, hasMax bool
	ref            reading.FactorRef
}

type factorVersion struct {
	from  int64
	value float64
	ref   reading.FactorRef
	def   bool
}

// job is one configured emission source.
type job struct {
	cfg      config.Emission
	spec     config.MethodSpec
	roles    []role
	idx      map[string]int
	factors  map[string][]factorVersion // role -> versions by valid_from
	maxHold  int64
	freeze   int64
	minValid float64
	additive bool
	needsMP  bool
	cems     *cemsSpec
	channels int   // extra aggregates after the roles (CEMS channels)
	shifts   []int // local start hours of shifts
	st       *jobState
	// hour cache for credit (not state)
	hcS, hcE int64
}

// New builds a calculator for cfg.Emissions, with cfg.Factors, the bound tags of
// cfg.Sources and the windows of cfg.Gateway.Timezone. cfg must have passed Validate;
// New re-checks what the formulas rely on (e.g. a current efficiency ≤ 1 %, §2.4).
func New(cfg *config.Config) (*Calculator, error) {
	loc, err := time.LoadLocation(cfg.Gateway.Timezone)
	if err != nil {
		return nil, fmt.Errorf("emissions: time zone: %w", err)
	}
	c := &Calculator{clk: clock{loc: loc}, byTag: map[string][]binding{}, srcIdx: map[srcKey]int{}}
	c.st.Version = snapshotVersion
	tags := map[string]config.Tag{}
	intervals := map[string]time.Duration{}
	for _, s := range cfg.Sources {
		intervals[s.Name] = s.Interval.D()
		for _, t := range s.Tags {
			tags[s.Name+"."+t.ID] = t
		}
	}
	factors := map[string][]factorVersion{}
	for _, f := range cfg.Factors {
		if f.Value == nil {
			return nil, fmt.Errorf("emissions: factor %s %s has no value", f.ID, f.Version)
		}
		from, err := f.ValidFromTime(loc)
		if err != nil {
			return nil, fmt.Errorf("emissions: factor %s %s: %w", f.ID, f.Version, err)
		}
		v := f.Float64()
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("emissions: factor %s %s is not finite", f.ID, f.Version)
		}
		if f.Unit == "%" && v <= 1 {
			return nil, fmt.Errorf("emissions: factor %s %s: %v %% is not a percentage > 1 (§2.4)", f.ID, f.Version, v)
		}
		factors[f.ID] = append(factors[f.ID], factorVersion{from: from.UnixNano(), value: v, ref: reading.FactorRef{ID: f.ID, Version: f.Version}, def: f.Default})
	}
	for _, vs := range factors {
		slices.SortFunc(vs, func(a, b factorVersion) int { return cmp64(a.from, b.from) })
	}
	seen := map[string]bool{}
	for ji, e := range cfg.Emissions {
		if seen[e.Name] {
			return nil, fmt.Errorf("emissions: %q listed twice", e.Name)
		}
		seen[e.Name] = true
		j, err := newJob(e, tags, intervals, factors)
		if err != nil {
			return nil, fmt.Errorf("emissions: %s: %w", e.Name, err)
		}
		c.jobs = append(c.jobs, j)
		c.st.Jobs = append(c.st.Jobs, j.st)
		for ri, r := range j.roles {
			c.byTag[r.tag] = append(c.byTag[r.tag], binding{ji, ri})
		}
	}
	return c, nil
}

var (
	stateRoles = []string{"operating", "batch", "cells"}
	// Methods whose window result is a linear function of amounts: the minutes of an
	// hour add up to the hour.
	additiveMethods = []string{"fuel", "fuel-carbon", "clinker-b", "clinker-a", "kiln-dust", "anode-co2", "electricity", "steel-mass-balance"}
)

func newJob(e config.Emission, tags map[string]config.Tag, intervals map[string]time.Duration, factors map[string][]factorVersion) (*job, error) {
	spec, ok := config.Methods[e.Method]
	if !ok {
		return nil, fmt.Errorf("unknown method %q", e.Method)
	}
	j := &job{cfg: e, spec: spec, idx: map[string]int{}, factors: map[string][]factorVersion{},
		maxHold: int64(e.MaxHold), freeze: int64(e.FreezeWindow), minValid: 0.8}
	if e.MinValidFraction != nil {
		j.minValid = e.MinValidFraction.Float64()
	}
	if j.maxHold <= 0 {
		j.maxHold = int64(2 * time.Second)
	}
	_, hasLC := e.Inputs["line_current"]
	j.additive = slices.Contains(additiveMethods, e.Method) && !hasLC
	j.needsMP = e.Method == "anode-co2" || strings.HasPrefix(e.Method, "pfc-") || e.Method == "metal-estimate"
	refFactor := 1.0
	if r := e.Reference; r != nil && r.TemperatureDegC != nil && r.PressureKPa != nil {
		// §1.2: V_N = V_ref × (273.15 / T_ref[K]) × (P_ref / 101.325).
		refFactor = stdTemperatureK / (r.TemperatureDegC.Float64() + stdTemperatureK) * r.PressureKPa.Float64() / stdPressureKPa
	}
	for _, name := range slices.Sorted(maps.Keys(e.Inputs)) {
		tagName := e.Inputs[name]
		t, ok := tags[tagName]
		if !ok {
			return nil, fmt.Errorf("input %s: tag %q is not configured", name, tagName)
		}
		src, _, _ := strings.Cut(tagName, ".")
		r := role{name: name, tag: tagName, unit: t.Unit, counter: t.Kind == "counter", state: slices.Contains(stateRoles, name),
			interval: intervals[src], scale: 1}
		if r.interval <= 0 {
			r.interval = time.Second
		}
		switch t.Unit {
		case "t/h", "Nm3/h", "Sm3/h", "MW", "kA":
			r.perHour = true
		case "kg/h":
			r.perHour, r.scale = true, 1e-3
		case "kW", "A":
			r.perHour, r.scale = true, 1e-3 // kW -> MW (× h = MWh); A -> kA
		case "kg", "kWh":
			r.scale = 1e-3 // kg -> t; kWh -> MWh (§1.1: never mix kWh and MWh)
		}
		if name == "fuel" && (strings.HasPrefix(t.Unit, "Nm3") || strings.HasPrefix(t.Unit, "Sm3")) {
			r.scale *= refFactor
		}
		if r.state || (!r.perHour && !r.counter) {
			r.perHour = false
		}
		if r.counter {
			switch {
			case t.Rollover != nil:
				r.rollover = t.Rollover.Value
			case t.Width > 0 && t.Width < 64:
				r.rollover, _ = reading.FromUint64(1 << uint(t.Width))
			case t.Width == 64:
				r.rollover, _ = reading.ParseValue("18446744073709551616")
			}
			if t.MaxRate != nil {
				r.maxRate = t.MaxRate.Float64()
			} else {
				r.maxRate = math.Inf(1)
			}
		}
		if cal, ok := e.Calibration[name]; ok && cal.A != nil && cal.B != nil {
			r.cal = &calib{a: cal.A.Float64(), b: cal.B.Float64(), ref: reading.FactorRef{ID: "calibration:" + name, Version: cal.Version}}
			if cal.Min != nil {
				r.cal.min, r.cal.hasMin = cal.Min.Float64(), true
			}
			if cal.Max != nil {
				r.cal.max, r.cal.hasMax = cal.Max.Float64(), true
			}
		}
		r.required = !slices.Contains([]string{"operating", "batch", "production", "line_current", "cells"}, name)
		if j.needsMP && (name == "production" || name == "line_current" || name == "cells") {
			r.required = true
		}
		if e.Method == "pfc-slope" && name == "cells" {
			r.required = true
		}
		if _, hasP := e.Inputs["production"]; hasP && (name == "line_current" || name == "cells") && e.Method != "pfc-slope" {
			r.required = false
		}
		j.idx[name] = len(j.roles)
		j.roles = append(j.roles, r)
	}
	if len(j.roles) > 60 {
		return nil, fmt.Errorf("%d inputs, at most 60", len(j.roles))
	}
	for role, id := range e.Factors {
		vs, ok := factors[id]
		if !ok {
			return nil, fmt.Errorf("factor %s: no record with id %q", role, id)
		}
		j.factors[role] = vs
	}
	if e.Method == "cems" {
		cs, err := newCEMS(j, e)
		if err != nil {
			return nil, err
		}
		j.cems = cs
		j.channels = cemsChannels
	}
	for _, s := range e.Shifts {
		t, err := time.Parse("15:04", s)
		if err != nil || t.Minute() != 0 {
			return nil, fmt.Errorf("shift %q: want \"HH:00\"", s)
		}
		j.shifts = append(j.shifts, t.Hour())
	}
	slices.Sort(j.shifts)
	j.shifts = slices.Compact(j.shifts)
	j.st = newJobState(e.Name, e.Method, len(j.roles))
	return j, nil
}

// Observe hands the calculator one reading, as sealed: origin and logID of its stream and
// its seq there. Readings of tags no emission binds are ignored. Observe only queues; the
// work happens in Advance, so readings of different sources may arrive in any order as
// long as they arrive before the watermark passes their time.
func (c *Calculator) Observe(origin string, logID [16]byte, seq uint64, r reading.Reading) {
	bs := c.byTag[r.Tag]
	if len(bs) == 0 {
		return
	}
	k := srcKey{origin, logID}
	src, ok := c.srcIdx[k]
	if !ok {
		src = len(c.st.Srcs)
		c.st.Srcs = append(c.st.Srcs, k)
		c.srcIdx[k] = src
	}
	for _, b := range bs {
		st := c.jobs[b.job].st
		st.Pending = append(st.Pending, pend{Role: b.role, Src: src, Seq: seq, T: r.Time, HasV: r.HasValue, V: r.Value,
			Sev: uint8(r.Quality.Severity), Flags: uint32(r.Quality.Flags)})
	}
}

// invalidReadingFlags are the reading flags that make a Good reading invalid for MRV
// (mrv-methods.md §5.1): saturated, forced, repeated, substituted by the source, in
// calibration, frozen, or without a number.
const invalidReadingFlags = reading.FlagOutOfRange | reading.FlagManualOverride | reading.FlagStale | reading.FlagSubstituted |
	reading.FlagCalibration | reading.FlagFrozen | reading.FlagNoValue | reading.FlagDeviceFault | reading.FlagMaintenance

// Advance moves the watermark to t: every reading observed with a time before t is
// applied, and every window whose end is at or before t closes (a window waits, at most
// max_hold, for the counter reading that ends its last interval). It returns the results
// to seal, each in its emission's stream, in order: revisions of retained windows that late
// data changed, then newly closed minutes, hours, shifts, days and batches.
//
// The watermark should trail the wall clock by the longest a reading can take to reach
// Observe (a poll timeout plus a seal tick), so that readings are not late.
func (c *Calculator) Advance(t time.Time) []Result {
	c.out = nil
	now := t.UnixNano()
	for _, j := range c.jobs {
		c.sweep(j, now)
		c.revise(j) // windows closed before: late data went into them
		c.closeWindows(j, now)
		c.gc(j)
	}
	out := c.out
	c.out = nil
	return out
}

// sweep applies the pending readings before now, in time order, and credits held rate
// values up to now.
func (c *Calculator) sweep(j *job, now int64) {
	st := j.st
	if st.NextClose == 0 {
		start := now
		for _, p := range st.Pending {
			start = min(start, p.T)
		}
		st.NextClose = c.clk.minuteStart(start)
		st.Cursor = st.NextClose
	}
	slices.SortStableFunc(st.Pending, func(a, b pend) int { return cmp64(a.T, b.T) })
	n := 0
	for _, p := range st.Pending {
		if p.T >= now {
			break
		}
		n++
		c.apply(j, p)
	}
	st.Pending = append(st.Pending[:0], st.Pending[n:]...)
	if now > st.Cursor {
		c.creditRates(j, st.Cursor, now)
		st.Cursor = now
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readingValid applies §5.1: only Good readings with a value and no invalidating flag
// count (treat_uncertain_as_bad).
func readingValid(p pend) bool {
	return p.HasV && reading.Severity(p.Sev) == reading.Good && reading.Flag(p.Flags)&invalidReadingFlags == 0
}

func (c *Calculator) apply(j *job, p pend) {
	r := &j.roles[p.Role]
	rs := &j.st.Roles[p.Role]
	valid := readingValid(p)
	if r.counter {
		c.applyCounter(j, p, valid)
		return
	}
	if p.T < j.st.Cursor || (rs.Has && p.T < rs.T) {
		j.st.Late++ // out of order: its interval has been credited already
		return
	}
	c.creditRates(j, j.st.Cursor, p.T)
	j.st.Cursor = max(j.st.Cursor, p.T)
	c.count(j, p, valid)
	var flags uint32
	v := 0.0
	if valid {
		raw := p.V.Float64()
		x := raw
		if r.cal != nil {
			// §3.2 step 1: the analyser's calibration function, before anything else.
			x = r.cal.a + r.cal.b*raw
			if (r.cal.hasMin && raw < r.cal.min) || (r.cal.hasMax && raw > r.cal.max) {
				flags |= uint32(reading.DerivedCalRangeExceeded)
			}
		}
		v = x * r.scale
		if j.freeze > 0 {
			if !rs.Has || raw != rs.LastRaw {
				rs.ChangeT, rs.LastRaw = p.T, raw
			} else if p.T-rs.ChangeT > j.freeze {
				valid = false // §5.1: frozen, invalid
				flags |= uint32(reading.DerivedFrozen)
			}
		}
		if !rs.Has {
			rs.ChangeT, rs.LastRaw = p.T, raw
		}
	} else {
		flags |= uint32(reading.DerivedBadInput)
	}
	if r.name == "batch" && valid {
		c.batchReading(j, p.T, v)
	}
	*rs = roleState{Has: true, T: p.T, V: v, OK: valid, Flags: flags, Src: p.Src, Seq: p.Seq, ChangeT: rs.ChangeT, LastRaw: rs.LastRaw}
}

// count records one sample in the windows that contain its time.
func (c *Calculator) count(j *job, p pend, valid bool) {
	bump := func(a *agg) {
		switch {
		case valid:
			a.NValid++
		case reading.Severity(p.Sev) == reading.Uncertain:
			a.NUnc++
			a.Flags |= uint32(reading.DerivedBadInput)
		default:
			a.NBad++
			a.Flags |= uint32(reading.DerivedBadInput)
		}
	}
	if b := c.minute(j, c.clk.minuteStart(p.T), false); b != nil {
		bump(&b.Aggs[p.Role])
	}
	if b := c.hour(j, p.T, false); b != nil {
		bump(&b.Aggs[p.Role])
	}
	for _, b := range j.st.Batches {
		if p.T >= b.Start && (b.End == 0 || p.T < b.End) {
			bump(&b.Aggs[p.Role])
		}
	}
}

// applyCounter applies §1.5: delta = end − start; a decrease is a rollover only when the
// wrapped delta is plausible (≤ max_rate × Δt), else COUNTER_RESET; an increase beyond
// max_rate × Δt is COUNTER_JUMP. Both leave the interval missing.
func (c *Calculator) applyCounter(j *job, p pend, valid bool) {
	r := &j.roles[p.Role]
	rs := &j.st.Roles[p.Role]
	if rs.Has && p.T <= rs.T {
		j.st.Late++
		return
	}
	c.count(j, p, valid)
	if !valid {
		return // the next good reading's delta covers this interval
	}
	if !rs.Has {
		*rs = roleState{Has: true, T: p.T, Raw: p.V, OK: true, Src: p.Src, Seq: p.Seq}
		return
	}
	dtS := float64(p.T-rs.T) / nsSecond
	allow := r.maxRate * dtS
	delta := diff(p.V, rs.Raw)
	var flag reading.DerivedFlag
	switch {
	case delta >= 0 && delta > allow:
		flag = reading.DerivedCounterJump
	case delta < 0:
		wrapped := math.Inf(1)
		if r.rollover.Mantissa > 0 {
			if s, ok := p.V.Add(r.rollover); ok {
				wrapped = diff(s, rs.Raw)
			} else {
				wrapped = delta + r.rollover.Float64()
			}
		}
		if wrapped <= allow {
			delta = wrapped
		} else {
			flag = reading.DerivedCounterReset
		}
	}
	if flag != 0 {
		c.credit(j, p.Role, rs.T, p.T, piece{flags: uint32(flag)})
	} else {
		c.credit(j, p.Role, rs.T, p.T, piece{amount: delta * r.scale, valid: true,
			prov: [2]provRef{{rs.Src, rs.Seq, true}, {p.Src, p.Seq, true}}})
	}
	*rs = roleState{Has: true, T: p.T, Raw: p.V, OK: true, Src: p.Src, Seq: p.Seq}
}

// diff returns a − b, exactly in decimal when it fits, as a float64.
func diff(a, b reading.Value) float64 {
	if b.Mantissa != math.MinInt64 {
		if d, ok := a.Add(reading.Value{Mantissa: -b.Mantissa, Exp: b.Exp}); ok {
			return d.Float64()
		}
	}
	return a.Float64() - b.Float64()
}

// creditRates credits every rate role's held value over [from, to): valid up to
// max_hold after its reading, stale after (§3.3); and the CEMS channels.
func (c *Calculator) creditRates(j *job, from, to int64) {
	if to <= from {
		return
	}
	for i := range j.roles {
		r := &j.roles[i]
		rs := &j.st.Roles[i]
		if r.counter || !rs.Has {
			continue
		}
		until := rs.T + j.maxHold
		if e := min(to, until); e > from {
			p := piece{flags: rs.Flags}
			if rs.OK {
				p.valid, p.value, p.zero = true, rs.V, rs.V == 0
				if r.perHour {
					p.amount = rs.V * float64(e-from) / float64(nsHour)
				}
				p.prov[0] = provRef{rs.Src, rs.Seq, true}
			}
			c.credit(j, i, from, e, p)
		}
		if s := max(from, until); s < to {
			c.credit(j, i, s, to, piece{flags: uint32(reading.DerivedStale)})
		}
	}
	if j.cems != nil {
		c.creditCEMS(j, from, to)
	}
}

type provRef struct {
	src int
	seq uint64
	ok  bool
}

// piece is a contribution of one role over an interval.
type piece struct {
	amount float64 // over the whole interval, apportioned by time
	value  float64 // for time-weighted means
	valid  bool
	zero   bool
	flags  uint32
	prov   [2]provRef
}

// credit adds p over [a, b) to role i of every window it overlaps: minutes, hours and
// batches, pro-rated by overlap (§4). A closed window that is still retained is marked
// for revision; one that is gone loses the contribution (counted in Stats.Lost).
func (c *Calculator) credit(j *job, i int, a, b int64, p piece) {
	total := float64(b - a)
	bit := uint64(1) << uint(min(i, 63))
	apply := func(bk *bucket, s, e int64) {
		ag := &bk.Aggs[i]
		ag.Flags |= p.flags
		if !p.valid {
			return
		}
		dt := float64(e - s)
		ag.Amount += p.amount * dt / total
		ag.Weighted += p.value * dt / nsSecond
		ag.ValidS += dt / nsSecond
		if p.zero {
			ag.ZeroS += dt / nsSecond
		}
		for _, pr := range p.prov {
			if pr.ok && i < len(j.roles) {
				bk.Inputs = addProv(bk.Inputs, pr.src, pr.seq, bit)
			}
		}
		if bk.Emitted {
			bk.Dirty = true
		}
	}
	for m := c.clk.minuteStart(a); m < b; m += nsMinute {
		s, e := max(a, m), min(b, m+nsMinute)
		if bk := c.minute(j, m, true); bk != nil {
			apply(bk, s, e)
		} else if p.valid {
			j.st.Lost++
		}
		if bk := c.hour(j, m, true); bk != nil {
			apply(bk, s, e)
		}
	}
	for _, bk := range j.st.Batches {
		s, e := max(a, bk.Start), b
		if bk.End != 0 {
			e = min(b, bk.End)
		}
		if e > s {
			apply(bk, s, e)
		}
	}
}

func (j *job) newBucket(start, end int64) *bucket {
	return &bucket{Start: start, End: end, Aggs: make([]agg, len(j.roles)+j.channels)}
}

// minute returns the minute window starting at m, creating it when it is still open; nil
// when it closed and is no longer retained.
func (c *Calculator) minute(j *job, m int64, create bool) *bucket {
	if b, ok := j.st.Minutes[m]; ok {
		return b
	}
	if m < j.st.NextClose {
		return nil
	}
	b := j.newBucket(m, m+nsMinute)
	j.st.Minutes[m] = b
	return b
}

// hour returns the hour window containing t (see minute).
func (c *Calculator) hour(j *job, t int64, create bool) *bucket {
	if t < j.hcS || t >= j.hcE {
		j.hcS = c.clk.hourStart(t)
		j.hcE = j.hcS + nsHour
	}
	hs := j.hcS
	if b, ok := j.st.Hours[hs]; ok {
		return b
	}
	if j.hcE <= j.st.NextClose {
		return nil
	}
	b := j.newBucket(hs, j.hcE)
	j.st.Hours[hs] = b
	return b
}

// countersCovered reports whether every counter role has a reading at or after end, or
// has been silent for max_hold (the rest of the window is then missing, and a later
// reading revises it).
func (j *job) countersCovered(end, now int64) bool {
	for i := range j.roles {
		if !j.roles[i].counter {
			continue
		}
		rs := &j.st.Roles[i]
		if rs.T < end && now < max(rs.T, end)+j.maxHold {
			return false
		}
	}
	return true
}

// closeWindows closes every minute (and with it hours, shifts, days) and batch whose end
// is at or before now.
func (c *Calculator) closeWindows(j *job, now int64) {
	st := j.st
	for st.NextClose+nsMinute <= now && j.countersCovered(st.NextClose+nsMinute, now) {
		m := st.NextClose
		mb := c.minute(j, m, true)
		c.closeMinute(j, mb)
		st.NextClose = m + nsMinute
		if c.clk.hourStart(st.NextClose) != c.clk.hourStart(m) || st.NextClose == c.clk.hourStart(st.NextClose) {
			hs := c.clk.hourStart(m)
			hb := j.st.Hours[hs]
			if hb == nil {
				hb = j.newBucket(hs, hs+nsHour)
				j.st.Hours[hs] = hb
			}
			c.closeHour(j, hb)
		}
	}
	for _, b := range st.Batches {
		if b.End != 0 && !b.Emitted && b.End <= now && j.countersCovered(b.End, now) {
			s := c.eval(j, b, reading.WindowBatch)
			b.Sum, b.Emitted = s, true
			c.emit(j, reading.WindowBatch, b.Start, b.End, b.Label, s, 0)
		}
	}
}

func (c *Calculator) closeMinute(j *job, b *bucket) {
	s := c.eval(j, b, reading.WindowMinute)
	b.Sum, b.Emitted, b.Dirty = s, true, false
	c.emit(j, reading.WindowMinute, b.Start, b.End, "", s, b.Rev)
	if hb := c.hour(j, b.Start, true); hb != nil {
		hb.MatchedE += s.MatchedE
		hb.MatchedP += s.MatchedP
	}
	e, has := s.primary()
	ms := minuteSum{Start: b.Start, E: e, HasE: has, MatchedE: s.MatchedE, MatchedP: s.MatchedP, Flags: s.Flags}
	j.st.Recent = append(j.st.Recent, ms)
	if len(j.st.Recent) > 60 {
		j.st.Recent = append(j.st.Recent[:0], j.st.Recent[len(j.st.Recent)-60:]...)
	}
}

func (c *Calculator) closeHour(j *job, b *bucket) {
	s := c.eval(j, b, reading.WindowHour)
	old := b.Sum
	b.Sum, b.Emitted, b.Dirty = s, true, false
	c.emit(j, reading.WindowHour, b.Start, b.End, c.clk.hourLabel(b.Start), s, b.Rev)
	c.addHour(j, b.Start, s, old)
}

// addHour feeds a closed (or revised) hour into the cumulative total and its day and
// shift, closing those that end with it.
func (c *Calculator) addHour(j *job, hs int64, s, old *summary) {
	e, _ := s.primary()
	o, _ := old.primary()
	j.st.Total += e - o
	ds, de := c.clk.dayBounds(hs)
	periods := []*period{c.period(j, reading.WindowDay, ds, de, c.clk.dayLabel(ds))}
	if ss, se, ok := c.clk.shiftBounds(hs, j.shifts); ok {
		periods = append(periods, c.period(j, reading.WindowShift, ss, se, c.clk.hourLabel(ss)))
	}
	for _, p := range periods {
		p.Hours[hs] = s
		switch {
		case p.Emitted:
			p.Dirty = true
		case hs+nsHour >= p.End:
			p.Emitted = true
			c.emit(j, p.Kind, p.Start, p.End, p.Label, c.combine(j, p), 0)
		}
	}
}

func (c *Calculator) period(j *job, kind string, start, end int64, label string) *period {
	k := fmt.Sprintf("%s:%d", kind, start)
	p, ok := j.st.Periods[k]
	if !ok {
		p = &period{Kind: kind, Start: start, End: end, Label: label, Hours: map[int64]*summary{}}
		j.st.Periods[k] = p
	}
	return p
}

// revise re-emits retained windows that late data changed, with revision + 1 (§4 rule 4).
func (c *Calculator) revise(j *job) {
	for _, m := range sortedKeys(j.st.Minutes) {
		b := j.st.Minutes[m]
		if !b.Dirty {
			continue
		}
		old := b.Sum
		s := c.eval(j, b, reading.WindowMinute)
		b.Sum, b.Dirty = s, false
		b.Rev++
		c.emit(j, reading.WindowMinute, b.Start, b.End, "", s, b.Rev)
		if hb := j.st.Hours[c.clk.hourStart(b.Start)]; hb != nil && old != nil {
			hb.MatchedE += s.MatchedE - old.MatchedE
			hb.MatchedP += s.MatchedP - old.MatchedP
			if hb.Emitted {
				hb.Dirty = true
			}
		}
		for k := range j.st.Recent {
			if j.st.Recent[k].Start == b.Start {
				e, has := s.primary()
				j.st.Recent[k] = minuteSum{Start: b.Start, E: e, HasE: has, MatchedE: s.MatchedE, MatchedP: s.MatchedP, Flags: s.Flags}
			}
		}
	}
	for _, h := range sortedKeys(j.st.Hours) {
		b := j.st.Hours[h]
		if !b.Dirty {
			continue
		}
		old := b.Sum
		s := c.eval(j, b, reading.WindowHour)
		b.Sum, b.Dirty = s, false
		b.Rev++
		c.emit(j, reading.WindowHour, b.Start, b.End, c.clk.hourLabel(b.Start), s, b.Rev)
		c.addHour(j, b.Start, s, old)
	}
	for _, k := range slices.Sorted(maps.Keys(j.st.Periods)) {
		p := j.st.Periods[k]
		if p.Dirty {
			p.Dirty = false
			p.Rev++
			c.emit(j, p.Kind, p.Start, p.End, p.Label, c.combine(j, p), p.Rev)
		}
	}
	for _, b := range j.st.Batches {
		if b.Emitted && b.Dirty {
			b.Dirty = false
			b.Rev++
			s := c.eval(j, b, reading.WindowBatch)
			b.Sum = s
			c.emit(j, reading.WindowBatch, b.Start, b.End, b.Label, s, b.Rev)
		}
	}
}

func sortedKeys[V any](m map[int64]V) []int64 {
	ks := make([]int64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// gc drops closed windows past their retention.
func (c *Calculator) gc(j *job) {
	st := j.st
	for m, b := range st.Minutes {
		if b.Emitted && b.End < st.NextClose-int64(RetainMinutes) {
			delete(st.Minutes, m)
		}
	}
	for h, b := range st.Hours {
		if b.Emitted && b.End < st.NextClose-int64(RevisionHorizon) {
			delete(st.Hours, h)
		}
	}
	for k, p := range st.Periods {
		if p.Emitted && p.End < st.NextClose-int64(RevisionHorizon) {
			delete(st.Periods, k)
		}
	}
	st.Batches = slices.DeleteFunc(st.Batches, func(b *bucket) bool {
		return b.Emitted && b.End < st.NextClose-int64(RevisionHorizon)
	})
}

// batchReading opens a new batch window when the batch tag changes value (§4, Batch).
func (c *Calculator) batchReading(j *job, t int64, v float64) {
	st := j.st
	if st.BatchID != nil && *st.BatchID == v {
		return
	}
	for _, b := range st.Batches {
		if b.End == 0 {
			b.End = t
		}
	}
	id := v
	st.BatchID = &id
	b := j.newBucket(t, 0)
	b.Label = fmt.Sprintf("%v", v)
	st.Batches = append(st.Batches, b)
}
