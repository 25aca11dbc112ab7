package status

import (
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ago":   ago,
	"short": func(s string) string { return s[:min(len(s), 16)] },
	"num":   func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"fixed": func(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) },
	"bytes": humanBytes,
}).Parse(pageHTML))

// pageData is what page.html renders.
type pageData struct {
	Report
	Now       time.Time
	RefreshS  int
	Oldest    string
	Backlog   int
	Charts    []chart
	CertsLeft map[string]string
}

func (s *Server) servePage(w http.ResponseWriter, _ *http.Request) {
	r := s.report()
	now := r.Time
	d := pageData{Report: r, Now: now, RefreshS: int(math.Ceil(s.cfg.Refresh.Seconds())), CertsLeft: map[string]string{}}
	for _, st := range r.Streams {
		d.Backlog += st.Unpublished
	}
	if age := oldestUnpublished(r.Snapshot, now); age > 0 {
		d.Oldest = age.Round(time.Second).String()
	}
	for _, c := range r.Certificates {
		d.CertsLeft[c.Name] = until(c.NotAfter, now)
	}
	pts := s.hist.snapshot()
	span := s.cfg.Bucket * time.Duration(s.cfg.Buckets)
	names := make([]string, 0, len(r.Sources))
	for _, src := range r.Sources {
		names = append(names, src.Name)
	}
	d.Charts = []chart{
		readingsChart(pts, names, now, span, s.cfg.Bucket),
		backlogChart(pts, now, span, s.cfg.Bucket),
		emissionsChart(pts, now, span, s.cfg.Bucket),
	}
	var b strings.Builder
	if err := pageTmpl.Execute(&b, d); err != nil {
		s.log.Error("render status page", "err", err)
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	_, _ = w.Write([]byte(b.String()))
}

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
			fmt.Fprintf(&b, "%g,%g ", x, y)
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

// ago renders how long ago t was; "never" for a zero time.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	}
	return d.Round(time.Minute).String() + " ago"
}

// until renders the time left before t.
func until(t, now time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "expired"
	}
	if d > 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}

func humanBytes(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(k*k*k))
}
