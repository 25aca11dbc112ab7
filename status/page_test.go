package status

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHistoryRatesAndRing(t *testing.T) {
	h := newHistory(time.Minute, 3)
	snap := goodSnapshot()
	at := func(min int, good uint64) {
		snap.Sources = []Source{{Name: "kiln1", State: StateUp, Quality: map[string]uint64{"good": good}}}
		h.add(snap, t0.Truncate(time.Hour).Add(time.Duration(min)*time.Minute))
	}
	at(0, 0)
	at(1, 120) // 120 readings in 60 s
	require.InDelta(t, 2.0, h.rates()["kiln1"], 1e-9)
	pts := h.snapshot()
	require.Len(t, pts, 2)
	require.Equal(t, uint64(120), pts[1].Readings["kiln1"])
	at(2, 180)
	at(3, 180)
	at(4, 240)
	pts = h.snapshot()
	require.Len(t, pts, 3, "the ring keeps the last n buckets")
	require.Equal(t, t0.Truncate(time.Hour).Add(2*time.Minute), pts[0].Start)
	require.InDelta(t, 1.0, h.rates()["kiln1"], 1e-9)

	// A counter that goes backwards (a restart) is not a negative rate.
	at(5, 10)
	require.Equal(t, uint64(0), h.snapshot()[2].Readings["kiln1"])
}

func TestHistoryEmissionsKeepWorstValidity(t *testing.T) {
	h := newHistory(time.Minute, 60)
	start := t0.Truncate(time.Minute)
	snap := Snapshot{Emissions: []Emission{
		{Source: "stack", Window: "hour", Start: start.Truncate(time.Hour), End: start.Truncate(time.Hour).Add(time.Hour), Tonnes: 100, Validity: ValidityValid},
		{Source: "stack", Window: "minute", Start: start, End: start.Add(time.Minute), Tonnes: 0.5, Validity: ValidityInvalid},
	}}
	h.add(snap, start.Add(30*time.Second))
	snap.Emissions[1].Validity, snap.Emissions[1].Tonnes = ValidityValid, 1
	h.add(snap, start.Add(59*time.Second))
	e := h.snapshot()[0].Emissions["stack"]
	require.Equal(t, ValidityInvalid, e.Validity, "an interval invalid at any sample stays marked")
	require.InDelta(t, 1/(59.0/60), e.PerMinute, 1e-9, "the shortest window, as t per minute")
}

func TestPage(t *testing.T) {
	snap := goodSnapshot()
	f := &fake{snap: snap}
	s := newTestServer(t, Config{Refresh: 15 * time.Second}, f)
	base := t0.Add(-10 * time.Minute)
	for i := range 10 {
		f.set(func(s *Snapshot) {
			s.Sources[0].Quality = map[string]uint64{"good": uint64(i * 600)}
			start := base.Add(time.Duration(i) * time.Minute).Truncate(time.Minute)
			v := ValidityValid
			switch i {
			case 3:
				v = ValidityInvalid
			case 5:
				v = ValiditySubstituted
			}
			s.Emissions = []Emission{{Source: "kiln-stack", Window: "minute", Start: start, End: start.Add(time.Minute), Tonnes: 0.2, Validity: v}}
		})
		s.hist.add(f.Snapshot(), base.Add(time.Duration(i)*time.Minute+30*time.Second))
	}
	f.set(func(s *Snapshot) { s.Sources[0].LastError = `read holding 7: <timeout> & "reset"` })

	code, body := get(t, s.Handler(), "/")
	require.Equal(t, http.StatusOK, code, body)
	for _, want := range []string{
		`<meta http-equiv="refresh" content="15">`,
		`<meta name="viewport"`,
		`id="sources"`, `data-source="kiln1"`,
		`id="backlog"`, `id="backlog-total">3<`,
		`id="emissions"`, `class="figure">0.200<`,
		`id="chart-readings"`, `id="chart-backlog"`, `id="chart-emissions"`,
		`<polyline points="`, `class="invalid"`, `class="substituted"`,
		`id="hatch-invalid"`,
		`&lt;timeout&gt; &amp; &#34;reset&#34;`, // escaped, never raw
		`opcua-client`, `30 days`,
		`synchronised`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "%!", "a printf verb without its argument")
	require.NotContains(t, body, "<script")
	parsePage(t, body)
	local := strings.ReplaceAll(body, `xmlns="http://www.w3.org/2000/svg"`, "")
	require.False(t, strings.Contains(local, "http://") || strings.Contains(local, "https://") || strings.Contains(local, " src="), "no external assets")
	require.Equal(t, 1, strings.Count(body, `id="hatch-invalid"`), "ids are unique")
}

func TestPageWithoutData(t *testing.T) {
	s := newTestServer(t, Config{}, &fake{snap: Snapshot{Clock: ClockUnknown}})
	code, body := get(t, s.Handler(), "/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "no sources configured")
	require.Contains(t, body, "no live emission windows")
	require.Contains(t, body, "no emission data")
	code, _ = get(t, s.Handler(), "/nope")
	require.Equal(t, http.StatusNotFound, code)
}

// node is an element of the page as a parser sees it.
type node struct {
	name     string
	attrs    map[string]string // unescaped
	text     strings.Builder   // unescaped text of the element and its descendants
	children []*node
}

// parsePage parses the page as XML, lenient only about HTML's void elements and named
// entities: an unbalanced tag or a broken attribute fails the test.
func parsePage(t *testing.T, body string) *node {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(body))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	root := &node{name: "#document"}
	stack := []*node{root}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{name: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			stack[len(stack)-1].children = append(stack[len(stack)-1].children, n)
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			for _, n := range stack {
				n.text.Write(tok)
			}
		}
	}
	require.Len(t, stack, 1, "every element is closed")
	return root
}

// all returns the elements under n (n included) for which match holds, in document order.
func (n *node) all(match func(*node) bool) []*node {
	var out []*node
	if match(n) {
		out = append(out, n)
	}
	for _, c := range n.children {
		out = append(out, c.all(match)...)
	}
	return out
}

// byID returns the element with the given id; it must be unique.
func (n *node) byID(t *testing.T, id string) *node {
	t.Helper()
	found := n.all(func(m *node) bool { return m.attrs["id"] == id })
	require.Len(t, found, 1, "id %q", id)
	return found[0]
}

// named returns the elements of the given tag name under n.
func (n *node) named(name string) []*node {
	return n.all(func(m *node) bool { return m.name == name })
}

// TestPageEscapes: names holding markup and quotes are escaped in element content and in
// attribute values, and come back unchanged through a parser.
func TestPageEscapes(t *testing.T) {
	evil := `<script>alert("x")</script> & 'q'`
	snap := goodSnapshot()
	snap.Site, snap.Version, snap.KeyID, snap.Clock = evil, evil, evil, evil
	snap.Sources = []Source{{Name: evil, State: evil, LastError: evil, Quality: map[string]uint64{"good": 1}}}
	snap.Streams = []Stream{{Name: evil, LogID: evil}}
	snap.Uplink.LastError = evil
	snap.Emissions = []Emission{{Source: evil, Window: evil, Start: t0, End: t0.Add(time.Hour), Tonnes: 1, Validity: evil}}
	snap.Certificates = []Certificate{{Name: evil, Subject: evil, NotAfter: t0}}
	s := newTestServer(t, Config{}, &fake{snap: snap})
	s.sample()

	code, body := get(t, s.Handler(), "/")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, strings.ToLower(body), "<script")
	require.NotContains(t, body, `"x"`)
	const esc = `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;q&#39;`
	for _, want := range []string{
		`<tr class="source" data-source="` + esc + `">` + "\n<td>" + esc + `</td>`,
		`<span class="badge ` + esc + `">` + esc + `</span>`,
		`<span title="` + esc + `">` + esc[:16],
		`<td class="err">` + esc + `</td>`,
		`<td class="` + esc + `-v">` + esc + `</td>`,
		`<title>mrv-agent ` + esc + `/gw1 (not ready)</title>`,
	} {
		require.Contains(t, body, want)
	}
	require.NotContains(t, body, "%!", "a printf verb without its argument")

	page := parsePage(t, body)
	require.Equal(t, "mrv-agent "+evil+"/gw1 (not ready)", page.named("title")[0].text.String())
	rows := page.all(func(n *node) bool { return n.attrs["class"] == "source" })
	require.Len(t, rows, 1)
	require.Equal(t, evil, rows[0].attrs["data-source"])
	require.Equal(t, evil, rows[0].named("td")[0].text.String())
	require.Equal(t, "badge "+evil, page.byID(t, "clock").attrs["class"])
	stream := page.all(func(n *node) bool { return n.attrs["class"] == "id" })
	require.Equal(t, evil, stream[0].attrs["title"])
	legend := page.byID(t, "chart-emissions").all(func(n *node) bool { return n.attrs["class"] == "legend" })
	require.Contains(t, legend[0].text.String(), evil)
	readings := page.byID(t, "chart-readings")
	require.Contains(t, readings.all(func(n *node) bool { return n.attrs["class"] == "legend" })[0].text.String(), evil)
	require.Equal(t, evil, page.byID(t, "certificates").named("td")[0].text.String())
}

// TestPageSections: every section and every conditional part renders.
func TestPageSections(t *testing.T) {
	snap := goodSnapshot()
	snap.Pipeline.FailedCommits, snap.Pipeline.IdleSeconds = 4, 100
	snap.Buffer = Buffer{Open: false, Failing: true, LiveBytes: 3 << 20, FileBytes: 5 << 30, Quarantined: 2, Dropped: 6}
	snap.Uplink = Uplink{Connected: false, InFlight: 1, LastAck: t0.Add(-90 * time.Second), Published: 12, Reconnects: 3, LastError: "EOF"}
	snap.Certificates = append(snap.Certificates, Certificate{Name: "old", Subject: "CN=old", NotAfter: t0.Add(-time.Hour)},
		Certificate{Name: "soon", Subject: "CN=soon", NotAfter: t0.Add(5 * time.Hour)})
	snap.Emissions[0].Validity = ValiditySubstituted
	s := newTestServer(t, Config{Refresh: 1500 * time.Millisecond}, &fake{snap: snap})
	s.sample()
	code, body := get(t, s.Handler(), "/")
	require.Equal(t, http.StatusOK, code)
	page := parsePage(t, body)
	text := func(id string) string { return page.byID(t, id).text.String() }

	require.Equal(t, "2", page.all(func(n *node) bool { return n.attrs["http-equiv"] == "refresh" })[0].attrs["content"])
	require.Equal(t, "stalled", text("healthy"))
	require.Equal(t, "not ready", text("ready"))
	require.Equal(t, "badge bad", page.byID(t, "ready").attrs["class"])
	require.Contains(t, text("verdict"), "at 2026-03-01 12:00:30 UTC, refreshing every 2 s")
	problems := page.all(func(n *node) bool { return n.attrs["class"] == "problems" })
	require.Len(t, problems, 1)
	require.Len(t, problems[0].named("li"), 2)
	require.Contains(t, problems[0].text.String(), "buffer not open")

	agent := text("agent")
	for _, want := range []string{"version", "test", "abababababababab…", "synchronised", "1s ago", "30 / 7, 4 failed commits"} {
		require.Contains(t, agent, want)
	}
	require.Equal(t, strings.Repeat("ab", 32), page.byID(t, "agent").all(func(n *node) bool { return n.attrs["title"] != "" })[0].attrs["title"])

	sources := page.byID(t, "sources")
	require.Len(t, sources.named("tr"), 2)
	require.Equal(t, []string{"kiln1", "up", "now", "0.0", "25 / 3 / 2", ""}, cells(sources.named("tr")[1]))

	backlog := page.byID(t, "backlog")
	require.Contains(t, backlog.text.String(), "Unpublished blocks: 3, oldest 10s")
	require.Equal(t, []string{"agent", "0101010101010101", "4", "0", "0", "–"}, cells(backlog.named("tr")[1]))
	require.Equal(t, []string{"kiln1", "0202020202020202", "40", "0", "3", "10 s"}, cells(backlog.named("tr")[2]))

	uplink := text("uplink")
	for _, want := range []string{"disconnected", "in flight1", "last PUBACK1m ago", "12 blocks, 3 reconnects", "last errorEOF",
		"closed, commits failing; 3.0 MiB live, 5.00 GiB file, 2 quarantined, 6 dropped"} {
		require.Contains(t, uplink, want)
	}

	emissions := page.byID(t, "emissions")
	require.Equal(t, []string{"kiln-stack", "hour from " + t0.Truncate(time.Hour).Local().Format("15:04"), "1.500", "substituted"}, cells(emissions.named("tr")[1]))
	require.Equal(t, "substituted-v", emissions.named("td")[3].attrs["class"])

	certs := page.byID(t, "certificates").named("tr")
	require.Len(t, certs, 4)
	require.Equal(t, []string{"opcua-client", "CN=gw1", "2026-03-31 (30 days)"}, cells(certs[1]))
	require.Equal(t, []string{"old", "CN=old", "2026-03-01 (expired)"}, cells(certs[2]))
	require.Equal(t, []string{"soon", "CN=soon", "2026-03-01 (5h0m0s)"}, cells(certs[3]))

	charts := page.byID(t, "charts")
	require.Len(t, charts.named("figure"), 3)
	for _, id := range []string{"chart-readings", "chart-backlog", "chart-emissions"} {
		fig := page.byID(t, id)
		svg := fig.named("svg")
		require.Len(t, svg, 1, id)
		require.Equal(t, "0 0 600 150", svg[0].attrs["viewBox"], id)
		require.Len(t, fig.named("line"), 2, "axes of %s", id)
		require.Len(t, svg[0].named("text"), 2+5, "y and x labels of %s", id)
		require.NotEmpty(t, fig.named("figcaption")[0].text.String())
	}
	require.Len(t, page.byID(t, "chart-backlog").named("rect"), 1, "one bucket sampled")
	require.Contains(t, page.byID(t, "chart-backlog").named("rect")[0].text.String(), "3 blocks")
	bars := page.byID(t, "chart-emissions").all(func(n *node) bool { return n.name == "rect" && n.attrs["class"] != "" })
	require.Len(t, bars, 1)
	require.Equal(t, "substituted", bars[0].attrs["class"])
	require.Len(t, page.byID(t, "hatch-substituted").named("rect"), 2)
	require.Len(t, page.byID(t, "chart-readings").named("circle"), 0, "one sample gives no rate yet")
}

// cells is the text of each cell of a table row.
func cells(tr *node) []string {
	var out []string
	for _, td := range tr.named("td") {
		out = append(out, td.text.String())
	}
	return out
}
