package status

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH         = 600, 150
	padL, padR             = 48, 8
	padT, padB             = 8, 20
	plotW, plotH   float64 = chartW - padL - padR, chartH - padT - padB
)

// palette colours series by source index.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"}

// chart is one server-rendered SVG chart.
type chart struct {
	ID, Title, Unit string
	W, H            int
	YTop            string // label of the top of the y axis
	Hatched         bool   // bars may be hatched as invalid or substituted
	Lines           []line
	Bars            []bar
	XLabels         []label
	Legend          []legend
	Empty           string // shown when there is nothing to plot
	Axis            struct{ X0, X1, Y0, Y1 float64 }
}

type line struct {
	Name, Color, Points string
	Dots                []dot
}

type dot struct{ X, Y float64 }

type bar struct {
	X, Y, W, H   float64
	Color, Class string
	Title        string
}

type label struct {
	X, Y float64
	Text string
}

type legend struct{ Name, Color, Class string }

// frame sets the common geometry: x runs over the last span up to now.
func frame(id, title, unit string, now time.Time, span time.Duration) chart {
	c := chart{ID: id, Title: title, Unit: unit, W: chartW, H: chartH}
	c.Axis.X0, c.Axis.X1, c.Axis.Y0, c.Axis.Y1 = padL, padL+plotW, padT, padT+plotH
	for i := 0; i <= 4; i++ {
		t := now.Add(-span + span*time.Duration(i)/4)
		c.XLabels = append(c.XLabels, label{X: padL + plotW*float64(i)/4, Y: chartH, Text: t.Local().Format("15:04")})
	}
	return c
}

func xOf(t, now time.Time, span time.Duration) float64 {
	f := 1 - now.Sub(t).Seconds()/span.Seconds()
	return round1(padL + plotW*math.Max(0, math.Min(1, f)))
}

func yOf(v, top float64) float64 {
	if top <= 0 {
		return padT + plotH
	}
	return round1(padT + plotH*(1-math.Max(0, math.Min(1, v/top))))
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// niceTop rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceTop(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// readingsChart plots readings/s per source, one line each.
func readingsChart(pts []point, sources []string, now time.Time, span, bucket time.Duration) chart {
	c := frame("chart-readings", "Readings per second, by source", "readings/s", now, span)
	top := 0.0
	rate := func(p point, src string) float64 {
		if p.Covered <= 0 {
			return 0
		}
		return float64(p.Readings[src]) / p.Covered.Seconds()
	}
	for _, p := range pts {
		for _, src := range sources {
			top = math.Max(top, rate(p, src))
		}
	}
	top = niceTop(top)
	c.YTop = strconv.FormatFloat(top, 'g', 4, 64)
	for i, src := range sources {
		l := line{Name: src, Color: palette[i%len(palette)]}
		var b strings.Builder
		for _, p := range pts {
			if p.Covered <= 0 {
				continue
			}
			x, y := xOf(p.Start.Add(bucket/2), now, span), yOf(rate(p, src), top)
			b.WriteString(num(x) + "," + num(y) + " ")
			l.Dots = append(l.Dots, dot{x, y})
		}
		l.Points = strings.TrimSpace(b.String())
		c.Lines = append(c.Lines, l)
		c.Legend = append(c.Legend, legend{Name: src, Color: l.Color})
	}
	if len(sources) == 0 {
		c.Empty = "no sources configured"
	}
	return c
}

// backlogChart plots the most unpublished blocks seen per bucket.
func backlogChart(pts []point, now time.Time, span, bucket time.Duration) chart {
	c := frame("chart-backlog", "Backlog: unpublished blocks", "blocks", now, span)
	top := 0.0
	for _, p := range pts {
		top = math.Max(top, float64(p.Backlog))
	}
	top = niceTop(top)
	c.YTop = strconv.FormatFloat(top, 'g', 4, 64)
	w := round1(plotW * bucket.Seconds() / span.Seconds())
	for _, p := range pts {
		x := xOf(p.Start, now, span)
		y := yOf(float64(p.Backlog), top)
		c.Bars = append(c.Bars, bar{X: x, Y: y, W: math.Max(1, w-1), H: round1(padT + plotH - y), Color: "#1f77b4",
			Title: fmt.Sprintf("%s: %d blocks, oldest %.0f s", p.Start.Local().Format("15:04"), p.Backlog, p.Oldest)})
	}
	c.Legend = []legend{{Name: "unpublished blocks", Color: "#1f77b4"}}
	return c
}

// emissionsChart plots t CO2 per minute per emission source, grouped per bucket, with
// invalid and substituted intervals hatched.
func emissionsChart(pts []point, now time.Time, span, bucket time.Duration) chart {
	c := frame("chart-emissions", "Emissions: t CO2 per minute, by emission source", "t CO2/min", now, span)
	c.Hatched = true
	seen := map[string]bool{}
	var sources []string
	top := 0.0
	for _, p := range pts {
		for src, e := range p.Emissions {
			if !seen[src] {
				seen[src] = true
				sources = append(sources, src)
			}
			top = math.Max(top, e.PerMinute)
		}
	}
	sort.Strings(sources)
	top = niceTop(top)
	c.YTop = strconv.FormatFloat(top, 'g', 4, 64)
	if len(sources) == 0 {
		c.Empty = "no emission data"
		return c
	}
	w := plotW * bucket.Seconds() / span.Seconds() / float64(len(sources))
	for _, p := range pts {
		for i, src := range sources {
			e, ok := p.Emissions[src]
			if !ok {
				continue
			}
			x := xOf(p.Start, now, span) + w*float64(i)
			y := yOf(e.PerMinute, top)
			class := ""
			switch validityRank(e.Validity) {
			case 3:
				class = "invalid"
			case 1, 2:
				class = "substituted"
			}
			c.Bars = append(c.Bars, bar{X: round1(x), Y: y, W: round1(math.Max(1, w-0.5)), H: round1(padT + plotH - y),
				Color: palette[i%len(palette)], Class: class,
				Title: fmt.Sprintf("%s %s: %.4g t CO2/min (%s)", src, p.Start.Local().Format("15:04"), e.PerMinute, e.Validity)})
		}
	}
	for i, src := range sources {
		c.Legend = append(c.Legend, legend{Name: src, Color: palette[i%len(palette)]})
	}
	c.Legend = append(c.Legend, legend{Name: "substituted", Class: "substituted"},
		legend{Name: "invalid", Class: "invalid"})
	return c
}

// hatchPatterns are the fills of invalid and substituted bars (classes "invalid" and
// "substituted" in the page's style).
const hatchPatterns markup = `<defs>
<pattern id="hatch-invalid" patternUnits="userSpaceOnUse" width="4" height="4" patternTransform="rotate(45)"><rect width="4" height="4" fill="#fff"/><rect width="2" height="4" fill="#b22"/></pattern>
<pattern id="hatch-substituted" patternUnits="userSpaceOnUse" width="4" height="4" patternTransform="rotate(45)"><rect width="4" height="4" fill="#fff"/><rect width="2" height="4" fill="#e80"/></pattern>
</defs>
`

// chart writes c as a figure: an inline SVG chart, then its legend.
func (w *htmlWriter) chart(c chart) {
	w.printf(`<figure id="%[1]v">
<figcaption>%[2]v</figcaption>
<svg class="chart" viewBox="0 0 %[3]v %[4]v" role="img" aria-label="%[2]v" xmlns="http://www.w3.org/2000/svg">
`, c.ID, c.Title, c.W, c.H)
	if c.Hatched {
		w.raw(hatchPatterns)
	}
	x0, x1, y0, y1 := num(c.Axis.X0), num(c.Axis.X1), num(c.Axis.Y0), num(c.Axis.Y1)
	w.printf(`<line class="axis" x1="%[1]v" y1="%[4]v" x2="%[2]v" y2="%[4]v"/>
<line class="axis" x1="%[1]v" y1="%[3]v" x2="%[1]v" y2="%[4]v"/>
<text x="%[1]v" y="%[3]v" dx="-4" dy="8" text-anchor="end">%[5]v</text>
<text x="%[1]v" y="%[4]v" dx="-4" text-anchor="end">0</text>
`, x0, x1, y0, y1, c.YTop)
	for _, l := range c.XLabels {
		w.printf(`<text x="%v" y="%v" dy="-4" text-anchor="middle">%v</text>`, num(l.X), num(l.Y), l.Text)
	}
	w.raw("\n")
	for _, b := range c.Bars {
		w.printf(`<rect x="%v" y="%v" width="%v" height="%v" fill="%v"`, num(b.X), num(b.Y), num(b.W), num(b.H), b.Color)
		if b.Class != "" {
			w.printf(` class="%v"`, b.Class)
		}
		w.printf(`><title>%v</title></rect>`, b.Title)
	}
	for _, l := range c.Lines {
		if l.Points != "" {
			w.printf(`<polyline points="%v" fill="none" stroke="%v" stroke-width="1.5"><title>%v</title></polyline>`, l.Points, l.Color, l.Name)
		}
		for _, d := range l.Dots {
			w.printf(`<circle cx="%v" cy="%v" r="2" fill="%v"/>`, num(d.X), num(d.Y), l.Color)
		}
	}
	if len(c.Bars) > 0 || len(c.Lines) > 0 {
		w.raw("\n")
	}
	if c.Empty != "" {
		w.printf(`<text x="300" y="75" text-anchor="middle">%v</text>`+"\n", c.Empty)
	}
	w.raw(`</svg>
<div class="legend">`)
	for _, l := range c.Legend {
		w.raw(`<span><i`)
		if l.Color != "" {
			w.printf(` style="background:%v"`, l.Color)
		}
		if l.Class != "" {
			w.printf(` class="%v"`, l.Class)
		}
		w.printf(`></i>%v</span>`, l.Name)
	}
	w.printf(` <small>(%v)</small></div>
</figure>
`, c.Unit)
}
