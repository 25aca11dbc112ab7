package emissions

import (
	"math"
	"slices"
	"strings"

	"github.com/mrv-agent/mrv-agent/reading"
)

// Result is one closed window: a derived record to seal in Stream, the emission's own
// stream (its name in emissions[]). Record.Time is the window's end.
type Result struct {
	Stream string
	Record reading.Record
}

// Body returns the record's derived body.
func (r Result) Body() *reading.DerivedBody {
	b, _ := r.Record.Body.(*reading.DerivedBody)
	return b
}

// emit converts a window's summary into a derived record: float64 results become exact
// decimals through their shortest round-tripping form (reading.FromFloat64); a value that
// is not finite is dropped and the window flagged missing.
func (c *Calculator) emit(j *job, kind string, start, end int64, label string, s *summary, rev uint32) {
	flags := reading.DerivedFlag(s.Flags)
	body := &reading.DerivedBody{
		Method: j.cfg.Method, Window: kind, Start: start, End: end, Revision: rev, Counts: s.Counts,
		Label: label, Substitution: s.Substitution, Tier: uint8(j.cfg.Tier), Factors: s.Factors, Hours: s.Hours,
	}
	for _, v := range s.Values {
		d, ok := reading.FromFloat64(v.V)
		if !ok || math.IsNaN(v.V) || math.IsInf(v.V, 0) {
			flags |= reading.DerivedMissing
			continue
		}
		body.Values = append(body.Values, reading.NamedValue{Name: v.Name, Value: d, Unit: v.Unit})
	}
	cov := s.Cov
	if math.IsNaN(cov) || cov < 0 {
		cov = 0
	}
	body.Coverage, _ = reading.FromFloat64(min(cov, 1))
	body.Flags = uint32(flags)
	body.FlagNames = flags.Names()
	for _, in := range s.Inputs {
		k := c.st.Srcs[in.Src]
		var tags []string
		for i, r := range j.roles {
			if in.Tags&(1<<uint(min(i, 63))) != 0 {
				tags = append(tags, r.tag)
			}
		}
		slices.Sort(tags)
		body.Inputs = append(body.Inputs, reading.DerivedInput{Origin: k.Origin, LogID: k.LogID[:], First: in.First, Last: in.Last, Tags: slices.Compact(tags)})
	}
	slices.SortFunc(body.Inputs, func(a, b reading.DerivedInput) int {
		if x := strings.Compare(a.Origin, b.Origin); x != 0 {
			return x
		}
		return cmp64(int64(a.First), int64(b.First))
	})
	c.out = append(c.out, Result{Stream: j.cfg.Name, Record: reading.Record{Kind: reading.KindDerived, Time: end, Body: body}})
}

// combine builds a shift or day from its hours (§4: sums of hours; availability; flag
// counts; intensity over matched hours).
func (c *Calculator) combine(j *job, p *period) *summary {
	s := &summary{}
	nHours := uint32((p.End - p.Start + nsHour/2) / nsHour)
	hrs := &reading.DerivedHours{Expected: nHours}
	var covW, expW float64
	idx := map[string]int{}
	for _, hs := range sortedKeys(p.Hours) {
		h := p.Hours[hs]
		s.Flags |= h.Flags
		covW += h.Cov * h.ExpS
		expW += h.ExpS
		s.Counts.Expected += h.Counts.Expected
		s.Counts.Valid += h.Counts.Valid
		s.Counts.Uncertain += h.Counts.Uncertain
		s.Counts.Bad += h.Counts.Bad
		s.Counts.Missing += h.Counts.Missing
		s.Counts.Substituted += h.Counts.Substituted
		s.Factors = append(s.Factors, h.Factors...)
		s.Inputs = mergeProv(s.Inputs, h.Inputs)
		if h.Substitution != "" {
			s.Substitution = h.Substitution
		}
		s.MatchedE += h.MatchedE
		s.MatchedP += h.MatchedP
		if h.HasP {
			s.P += h.P
			s.HasP = true
		}
		switch {
		case h.ExpS <= 0 && reading.DerivedFlag(h.Flags)&reading.DerivedNotOperating != 0:
			hrs.NotOperating++
		case h.Substitution != "":
			hrs.Substituted++
		case !hasValue(h) || reading.DerivedFlag(h.Flags)&reading.DerivedMissing != 0:
			hrs.Missing++
		case h.Valid:
			hrs.Valid++
		}
		for _, v := range h.Values {
			switch v.Name {
			case "intensity", "production", "production_matched", "concentration", "flow":
				continue
			}
			if i, ok := idx[v.Name]; ok {
				s.Values[i].V += v.V
			} else {
				idx[v.Name] = len(s.Values)
				s.Values = append(s.Values, v)
			}
		}
	}
	if absent := nHours - min(nHours, uint32(len(p.Hours))); absent > 0 {
		hrs.Missing += absent
		expW += float64(absent) * secondsPerHour
	}
	if hrs.Missing > 0 || (expW > 0 && covW/expW < 1-covEps) {
		s.Flags |= uint32(reading.DerivedPartial)
	}
	if expW > 0 {
		s.Cov = covW / expW
	} else {
		s.Cov = 1
	}
	s.ExpS = expW
	s.Hours = hrs
	s.Valid = hrs.Missing == 0 && hrs.Substituted == 0
	if s.HasP {
		s.Values = append(s.Values, nv{"production", s.P, "t"}, nv{"production_matched", s.MatchedP, "t"})
		if s.MatchedP > 0 {
			s.Values = append(s.Values, nv{"intensity", s.MatchedE / s.MatchedP, "t/t"})
		}
	}
	s.Factors = sortRefs(s.Factors)
	return s
}

func hasValue(s *summary) bool { _, ok := s.primary(); return ok }
