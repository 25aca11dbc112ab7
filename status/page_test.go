package status

import (
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
	require.NotContains(t, body, "ZgotmplZ", "html/template refused a value")
	require.NotContains(t, body, "<script")
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
