package status

import (
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pageData is what the page shows.
type pageData struct {
	Report
	Now      time.Time
	RefreshS int
	Oldest   string
	Backlog  int
	Charts   []chart
}

func (s *Server) servePage(w http.ResponseWriter, _ *http.Request) {
	r := s.report()
	now := r.Time
	d := pageData{Report: r, Now: now, RefreshS: int(math.Ceil(s.cfg.Refresh.Seconds()))}
	for _, st := range r.Streams {
		d.Backlog += st.Unpublished
	}
	if age := oldestUnpublished(r.Snapshot, now); age > 0 {
		d.Oldest = age.Round(time.Second).String()
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
	var p htmlWriter
	p.page(d)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	_, _ = io.WriteString(w, p.b.String())
}

// markup is the page's own HTML. Only constants convert to it implicitly, so a dynamic
// string cannot be written as markup by mistake.
type markup string

// htmlWriter writes the page. Dynamic values reach it only as the arguments of printf,
// which escapes every one of them with html.EscapeString: that is right in element
// content and in quoted attribute values alike. The page has no script, no external
// asset and only inline style (see the Content-Security-Policy of servePage).
type htmlWriter struct{ b strings.Builder }

// raw writes constant markup.
func (w *htmlWriter) raw(m markup) { w.b.WriteString(string(m)) }

// printf writes the markup format with each %v replaced by its argument, formatted with
// fmt.Sprint and escaped (a literal percent sign is written %%).
func (w *htmlWriter) printf(format markup, args ...any) {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = html.EscapeString(fmt.Sprint(a))
	}
	fmt.Fprintf(&w.b, string(format), esc...)
}

// page writes the whole document.
func (w *htmlWriter) page(d pageData) {
	w.printf(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="%v">
<link rel="icon" href="data:,">
<title>mrv-agent %v/%v%v</title>
`, d.RefreshS, d.Site, d.Gateway, pick(d.Ready, "", " (not ready)"))
	w.raw(pageStyle)
	w.raw("<body>\n")
	w.header(d)
	w.agent(d)
	w.sources(d)
	w.streams(d)
	w.uplink(d)
	w.emissions(d)
	w.certificates(d)
	w.raw(`<section id="charts">
<h2>Last hour</h2>
`)
	for _, c := range d.Charts {
		w.chart(c)
	}
	w.raw(`</section>
</body>
</html>
`)
}

// pageStyle is the page's only style sheet.
const pageStyle markup = `<style>
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:0;padding:.5rem;color:#222;background:#fafafa}
h1{font-size:1.2rem;margin:.2rem 0}
h2{font-size:1rem;margin:1rem 0 .3rem}
section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.4rem .6rem;margin:.5rem 0;overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.15rem .4rem;border-bottom:1px solid #eee;white-space:nowrap}
td.err{white-space:normal;color:#a00;max-width:30rem}
.badge{display:inline-block;padding:0 .4rem;border-radius:3px;color:#fff;font-weight:bold}
.ok,.up,.synchronised{background:#2a7d2a}.bad,.down,.unsynchronised{background:#b22}.unknown{background:#888}
.invalid-v{color:#b22;font-weight:bold}.substituted-v{color:#b60;font-weight:bold}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem}
figure{margin:.5rem 0 1rem}
svg.chart{width:100%;max-width:600px;height:auto;display:block}
svg .axis{stroke:#999;stroke-width:1}
svg text{font-size:15px;fill:#555}
svg .invalid{fill:url(#hatch-invalid)}
svg .substituted{fill:url(#hatch-substituted)}
.legend span{display:inline-block;margin-right:.8rem}
.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.2rem;vertical-align:middle}
.legend i.invalid{background:repeating-linear-gradient(45deg,#b22 0 2px,#fff 2px 4px)}
.legend i.substituted{background:repeating-linear-gradient(45deg,#e80 0 2px,#fff 2px 4px)}
ul.problems{color:#a00;margin:.2rem 0}
@media (max-width:600px){body{padding:.25rem}section{padding:.3rem}th,td{white-space:normal;padding:.1rem .2rem}th{font-size:.8rem}td.err,td.id{overflow-wrap:anywhere}.wide{display:none}}
</style>
</head>
`

// header writes the title and the health and readiness verdicts with their problems.
func (w *htmlWriter) header(d pageData) {
	w.printf(`<header>
<h1>mrv-agent · %v/%v</h1>
<div id="verdict">
<span class="badge %v" id="healthy">%v</span>
<span class="badge %v" id="ready">%v</span>
<small>at %v, refreshing every %v s</small>
</div>
`, d.Site, d.Gateway,
		pick(d.Healthy, "ok", "bad"), pick(d.Healthy, "healthy", "stalled"),
		pick(d.Ready, "ok", "bad"), pick(d.Ready, "ready", "not ready"),
		d.Now.Format("2006-01-02 15:04:05 MST"), d.RefreshS)
	if len(d.Problems) > 0 {
		w.raw(`<ul class="problems">`)
		for _, p := range d.Problems {
			w.printf("<li>%v</li>", p)
		}
		w.raw("</ul>\n")
	}
	w.raw("</header>\n\n")
}

// agent writes the agent's identity, clock and pipeline counters.
func (w *htmlWriter) agent(d pageData) {
	w.printf(`<section id="agent">
<h2>Agent</h2>
<div class="kv">
<span>version</span><span>%[1]v</span>
<span>key id</span><span title="%[2]v">%[3]v…</span>
<span>clock</span><span><span class="badge %[4]v" id="clock">%[4]v</span></span>
<span>last commit</span><span>%[5]v</span>
<span>readings / blocks</span><span>%[6]v / %[7]v`,
		d.Version, d.KeyID, short(d.KeyID), d.Clock, ago(d.Pipeline.LastCommit, d.Now), d.Pipeline.Readings, d.Pipeline.Blocks)
	if n := d.Pipeline.FailedCommits; n > 0 {
		w.printf(", <b>%v failed commits</b>", n)
	}
	w.raw(kvEnd)
}

// sources writes a row per source.
func (w *htmlWriter) sources(d pageData) {
	w.raw(`<section id="sources">
<h2>Sources</h2>
<table>
<tr><th>source</th><th>state</th><th>last poll</th><th>read&shy;ings/s</th><th>good / uncertain / bad</th><th>last error</th></tr>
`)
	for _, src := range d.Sources {
		w.printf(`<tr class="source" data-source="%[1]v">
<td>%[1]v</td><td><span class="badge %[2]v">%[2]v</span></td><td>%[3]v</td>
<td>%[4]v</td><td>%[5]v / %[6]v / %[7]v</td>
<td class="err">%[8]v</td></tr>
`, src.Name, src.State, ago(src.LastPoll, d.Now),
			fixed(src.ReadingsPerSecond, 1), src.Quality["good"], src.Quality["uncertain"], src.Quality["bad"],
			src.LastError)
	}
	if len(d.Sources) == 0 {
		w.raw(`<tr><td colspan="6">no sources configured</td></tr>` + "\n")
	}
	w.raw(tableEnd)
}

// streams writes the backlog and a row per stream.
func (w *htmlWriter) streams(d pageData) {
	w.printf(`<section id="backlog">
<h2>Streams and backlog</h2>
<p>Unpublished blocks: <b id="backlog-total">%v</b>`, d.Backlog)
	if d.Oldest != "" {
		w.printf(", oldest %v", d.Oldest)
	}
	w.raw(`</p>
<table>
<tr><th>stream</th><th>log id</th><th>next seq</th><th class="wide">stored</th><th>unpub&shy;lished</th><th>oldest</th></tr>
`)
	for _, st := range d.Streams {
		oldest := "–"
		if !st.OldestUnpublished.IsZero() {
			oldest = fixed(st.OldestUnpublishedSeconds, 0) + " s"
		}
		w.printf(`<tr class="stream"><td>%v</td><td class="id" title="%v">%v</td><td>%v</td><td class="wide">%v</td>
<td>%v</td><td>%v</td></tr>
`, st.Name, st.LogID, short(st.LogID), st.NextSeq, st.Stored, st.Unpublished, oldest)
	}
	w.raw(tableEnd)
}

// uplink writes the MQTT uplink's and the buffer's state.
func (w *htmlWriter) uplink(d pageData) {
	u, b := d.Uplink, d.Buffer
	w.printf(`<section id="uplink">
<h2>Uplink and buffer</h2>
<div class="kv">
<span>MQTT</span><span><span class="badge %v">%v</span></span>
<span>in flight</span><span>%v</span>
<span>last PUBACK</span><span>%v</span>
<span>published</span><span>%v blocks, %v reconnects</span>
`, pick(u.Connected, "up", "down"), pick(u.Connected, "connected", "disconnected"), u.InFlight, ago(u.LastAck, d.Now),
		u.Published, u.Reconnects)
	if u.LastError != "" {
		w.printf(`<span>last error</span><span class="err">%v</span>`+"\n", u.LastError)
	}
	w.raw("<span>buffer</span><span>")
	if b.Open {
		w.raw("open")
	} else {
		w.raw("<b>closed</b>")
	}
	if b.Failing {
		w.raw(", <b>commits failing</b>")
	}
	w.printf("; %v live, %v file", humanBytes(b.LiveBytes), humanBytes(b.FileBytes))
	if b.Quarantined > 0 {
		w.printf(", %v quarantined", b.Quarantined)
	}
	if b.Dropped > 0 {
		w.printf(", %v dropped", b.Dropped)
	}
	w.raw(kvEnd)
}

// emissions writes a row per live emission window.
func (w *htmlWriter) emissions(d pageData) {
	w.raw(`<section id="emissions">
<h2>Emissions</h2>
<table>
<tr><th>emission source</th><th>window</th><th>t CO2</th><th>validity</th></tr>
`)
	for _, e := range d.Emissions {
		w.printf(`<tr class="emission"><td>%[1]v</td><td>%[2]v from %[3]v</td><td class="figure">%[4]v</td>
<td class="%[5]v-v">%[5]v</td></tr>
`, e.Source, e.Window, e.Start.Local().Format("15:04"), fixed(e.Tonnes, 3), e.Validity)
	}
	if len(d.Emissions) == 0 {
		w.raw(`<tr><td colspan="4" class="figure">no live emission windows</td></tr>` + "\n")
	}
	w.raw(tableEnd)
}

// certificates writes a row per certificate, with the time left before it expires.
func (w *htmlWriter) certificates(d pageData) {
	w.raw(`<section id="certificates">
<h2>Certificates</h2>
<table>
<tr><th>certificate</th><th>subject</th><th>expires</th></tr>
`)
	for _, c := range d.Certificates {
		w.printf("<tr><td>%v</td><td>%v</td><td>%v (%v)</td></tr>\n",
			c.Name, c.Subject, c.NotAfter.Format("2006-01-02"), until(c.NotAfter, d.Now))
	}
	if len(d.Certificates) == 0 {
		w.raw(`<tr><td colspan="3">none</td></tr>` + "\n")
	}
	w.raw(tableEnd)
}

// The ends of the sections: a table, or a list of key-value pairs whose last value is open.
const (
	tableEnd markup = "</table>\n</section>\n\n"
	kvEnd    markup = "</span>\n</div>\n</section>\n\n"
)

// pick is yes when c holds, else no.
func pick(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}

// short is the first 16 bytes of an identifier.
func short(s string) string { return s[:min(len(s), 16)] }

// num formats a coordinate: the shortest decimal, never an exponent.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// fixed formats f with prec decimals.
func fixed(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }

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
