package status

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// contentTypeText is the media type of the Prometheus text exposition format 0.0.4.
const contentTypeText = "text/plain; version=0.0.4; charset=utf-8"

// Metric types of the text format.
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeHistogram = "histogram"
)

// desc describes one metric family: its name, help text, type and label names.
type desc struct {
	name, help, typ string
	labels          []string
}

// exposition writes metrics in the Prometheus text format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). The samples of a family
// must be written one after the other; its # HELP and # TYPE lines come with the first, so
// a family without samples is left out, as client_golang does.
type exposition struct {
	b    bytes.Buffer
	cur  *desc           // the family being written
	seen map[string]bool // label sets of cur written so far
	// skipped counts series left out because their label set was already written: a
	// duplicate would make Prometheus reject the whole scrape.
	skipped int
}

// sample writes one counter or gauge sample of d; values are d's label values, in order.
func (e *exposition) sample(d *desc, v float64, values ...string) {
	if ls, ok := e.series(d, values); ok {
		e.line(d.name, ls, formatFloat(v))
	}
}

// histogram writes h as a histogram of d: cumulative _bucket series up to le="+Inf" (which
// equals _count), then _sum and _count.
func (e *exposition) histogram(d *desc, h HistogramSnapshot, values ...string) {
	ls, ok := e.series(d, values)
	if !ok {
		return
	}
	le := func(bound string) string {
		if ls == "" {
			return `{le="` + bound + `"}`
		}
		return ls[:len(ls)-1] + `,le="` + bound + `"}`
	}
	for i, b := range h.Bounds {
		if !math.IsInf(b, +1) && i < len(h.Counts) {
			e.line(d.name+"_bucket", le(formatFloat(b)), strconv.FormatUint(h.Counts[i], 10))
		}
	}
	e.line(d.name+"_bucket", le("+Inf"), strconv.FormatUint(h.Count, 10))
	e.line(d.name+"_sum", ls, formatFloat(h.Sum))
	e.line(d.name+"_count", ls, strconv.FormatUint(h.Count, 10))
}

// series starts family d if it is not the current one and returns the rendered label set
// of values; false when that label set was written already.
func (e *exposition) series(d *desc, values []string) (string, bool) {
	if len(values) != len(d.labels) {
		panic("status: metric " + d.name + " takes " + strconv.Itoa(len(d.labels)) + " label values")
	}
	if e.cur != d {
		e.cur, e.seen = d, map[string]bool{}
		e.b.WriteString("# HELP " + d.name + " " + escapeHelp(d.help) + "\n")
		e.b.WriteString("# TYPE " + d.name + " " + d.typ + "\n")
	}
	ls := labelSet(d.labels, values)
	if e.seen[ls] {
		e.skipped++
		return "", false
	}
	e.seen[ls] = true
	return ls, true
}

func (e *exposition) line(name, labels, value string) {
	e.b.WriteString(name + labels + " " + value + "\n")
}

// labelSet renders {name="value",...}, or "" without labels.
func labelSet(names, values []string) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n + `="` + escapeLabel(values[i]) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// escapeLabel escapes a label value: backslash, double quote and line feed. Invalid UTF-8,
// which the format does not allow, becomes U+FFFD.
func escapeLabel(v string) string { return labelEscaper.Replace(strings.ToValidUTF8(v, "\uFFFD")) }

// escapeHelp escapes a help text: backslash and line feed.
func escapeHelp(v string) string { return helpEscaper.Replace(strings.ToValidUTF8(v, "\uFFFD")) }

// formatFloat formats a sample value as Prometheus does.
func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, +1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
