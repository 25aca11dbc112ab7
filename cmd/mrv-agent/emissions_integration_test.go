//go:build integration

package main

import (
	"bytes"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/agent/agenttest"
	"github.com/mrv-agent/mrv-agent/reading"
)

// emissionsYAML adds a natural-gas emission source on the kiln's fuel totaliser.
const emissionsYAML = `factors:
  - {id: ng-ncv, version: "t", value: 0.0360, unit: GJ/Nm3, source: test, valid_from: 2020-01-01}
  - {id: ng-ef, version: "1", value: 56.1, unit: t CO2/TJ, source: IPCC 2006, valid_from: 2006-01-01}
emissions:
  - name: kiln1-fuel
    method: fuel
    inputs: {fuel: kiln1.fuel_gas_total}
    factors: {ncv: ng-ncv, ef: ng-ef}
    reference: {temperature_degc: 0, pressure_kpa: 101.325}
`

// tonnesPerNm3 is NCV × EF of emissionsYAML: 0.0360 GJ/Nm3 × 56.1 t/TJ (mrv-methods.md TV1).
const tonnesPerNm3 = 0.0360 * 56.1 / 1000

// TestIntegrationEmissionsSurviveSIGKILL kills the agent (SIGKILL, a subprocess) in the
// middle of a minute and restarts it 10 s later on the same buffer. The calculator's state
// commits with the blocks, so the minutes around the kill neither count a reading twice nor
// lose the totaliser's advance: their CO2 adds up to what the simulator's counter moved,
// and the minute of the kill is either complete or flagged partial with its coverage.
func TestIntegrationEmissionsSurviveSIGKILL(t *testing.T) {
	bed := agenttest.New(t)
	v := bed.Subscribe(t)
	path := bed.ConfigFile(t, bed.Broker.URL())
	text, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(text, emissionsYAML...), 0o600))

	minutes := func() map[int64]*reading.DerivedBody {
		out := map[int64]*reading.DerivedBody{}
		for _, r := range v.Records() {
			if d, ok := r.Record.Body.(*reading.DerivedBody); ok && d.Window == reading.WindowMinute && r.Origin == agenttest.Site+"/"+agenttest.Gateway+"/kiln1-fuel" {
				if old, seen := out[d.Start]; !seen || d.Revision > old.Revision {
					out[d.Start] = d
				}
			}
		}
		return out
	}

	var log1, log2 bytes.Buffer
	first := startAgent(t, path, &log1)
	// The agent started inside a minute: wait for a complete one to close, then kill a
	// third of the way into a later minute, so the minute before the kill is complete too.
	var complete time.Time
	require.Eventually(t, func() bool {
		for start, d := range minutes() {
			// Complete: no interval missing (a Bad poll in between is covered by the
			// totaliser's next good reading).
			if d.Flags&uint32(reading.DerivedPartial|reading.DerivedCounterJump|reading.DerivedCounterReset|reading.DerivedMissing) == 0 {
				complete = time.Unix(0, start)
				return true
			}
		}
		return false
	}, 150*time.Second, 100*time.Millisecond, "a complete minute closes; minutes %v; log: %s", minutes(), &log1)
	for now := time.Now(); now.Second() < 15 || now.Second() > 30 || !now.Truncate(time.Minute).After(complete.Add(time.Minute)); now = time.Now() {
		<-time.After(200 * time.Millisecond)
	}
	killAt := time.Now()
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	require.Error(t, first.Wait())
	<-time.After(10 * time.Second)
	second := startAgent(t, path, &log2)

	m0 := killAt.Truncate(time.Minute)
	before, after := m0.Add(-time.Minute), m0.Add(time.Minute)
	require.Eventually(t, func() bool { _, ok := minutes()[after.UnixNano()]; return ok }, 150*time.Second, 100*time.Millisecond,
		"the minute after the kill closes; log: %s", &log2)
	require.NoError(t, second.Process.Signal(syscall.SIGTERM))
	require.NoError(t, second.Wait(), "log: %s", &log2)

	ms := minutes()
	var sum float64
	for _, m := range []time.Time{before, m0, after} {
		d, ok := ms[m.UnixNano()]
		require.True(t, ok, "a record for the minute at %s", m)
		co2, ok := d.Value("co2")
		require.True(t, ok, "minute %s has a co2 value (flags %s)", m, reading.DerivedFlag(d.Flags))
		sum += co2.Float64()
		t.Logf("minute %s: co2 %s t, coverage %s, flags %s, counts %+v, revision %d", m.Format("15:04"), co2, d.Coverage, reading.DerivedFlag(d.Flags), d.Counts, d.Revision)
	}
	kill := ms[m0.UnixNano()]
	// The totaliser's next reading after the restart carries the fuel of the outage, so the
	// minute is normally complete (coverage 1 up to float64 noise); if not, it says so.
	if kill.Coverage.Float64() < 1-1e-9 {
		require.NotZero(t, kill.Flags&uint32(reading.DerivedPartial), "a minute with less than full coverage is flagged partial")
	}
	start, ok := bed.Kiln.ValueAt("fuel_gas_total", before)
	require.True(t, ok)
	end, ok := bed.Kiln.ValueAt("fuel_gas_total", after.Add(time.Minute))
	require.True(t, ok)
	want := (end.Float64() - start.Float64()) * tonnesPerNm3
	// Readings come every 100 ms, so the minutes' edges fall within one poll of the
	// boundaries: 1 % covers that; counting the 10 s outage twice would add about 5 %.
	require.InEpsilon(t, want, sum, 0.01, "three minutes of fuel CO2 against the totaliser's advance")

	s := v.Stop(t)
	require.True(t, s.Clean(), "findings: %v", s.Findings)
}
