package emissions

import (
	"slices"
	"time"
)

const (
	nsMinute = int64(time.Minute)
	nsHour   = int64(time.Hour)
	nsSecond = float64(time.Second)
)

// RetainMinutes is how long closed minute windows are kept for revisions; RevisionHorizon
// is the same for hours, shifts and days. Data later than that is counted, not placed.
const (
	RetainMinutes   = 10 * time.Minute
	RevisionHorizon = 2 * time.Hour
)

// clock computes window boundaries in the gateway's time zone (§4). Minutes are UTC
// minutes (every current zone offset is a whole number of minutes); hours are local
// clock hours; days are local calendar days (23, 24 or 25 h); shifts start at configured
// local hours.
type clock struct {
	loc *time.Location
}

func floorTo(t, d int64) int64 {
	m := t % d
	if m < 0 {
		m += d
	}
	return t - m
}

func (c *clock) minuteStart(t int64) int64 { return floorTo(t, nsMinute) }

func (c *clock) offset(t int64) int64 {
	_, off := time.Unix(0, t).In(c.loc).Zone()
	return int64(off) * int64(time.Second)
}

func (c *clock) hourStart(t int64) int64 {
	off := c.offset(t)
	return floorTo(t+off, nsHour) - off
}

func (c *clock) dayBounds(t int64) (start, end int64) {
	lt := time.Unix(0, t).In(c.loc)
	y, m, d := lt.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, c.loc).UnixNano(), time.Date(y, m, d+1, 0, 0, 0, 0, c.loc).UnixNano()
}

func (c *clock) dayLabel(start int64) string {
	return time.Unix(0, start).In(c.loc).Format(time.DateOnly)
}

func (c *clock) hourLabel(start int64) string {
	return time.Unix(0, start).In(c.loc).Format("2006-01-02T15:04")
}

// shiftBounds returns the shift that contains t, given the shifts' local start hours; ok
// is false when there are none.
func (c *clock) shiftBounds(t int64, shifts []int) (start, end int64, ok bool) {
	if len(shifts) == 0 {
		return 0, 0, false
	}
	lt := time.Unix(0, t).In(c.loc)
	y, m, d := lt.Date()
	var cands []int64
	for k := -1; k <= 1; k++ {
		for _, h := range shifts {
			cands = append(cands, time.Date(y, m, d+k, h, 0, 0, 0, c.loc).UnixNano())
		}
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)
	for i := len(cands) - 1; i >= 0; i-- {
		if cands[i] <= t && i+1 < len(cands) {
			return cands[i], cands[i+1], true
		}
	}
	return 0, 0, false
}

// year returns the local calendar year of t (for year-to-date statistics, §3.4).
func (c *clock) year(t int64) int { return time.Unix(0, t).In(c.loc).Year() }
