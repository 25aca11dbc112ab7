package main

import (
	"fmt"
	"os"
)

// mark is what a steady window is measured between: the agent's /proc figures and status,
// the driver's and Mosquitto's CPU, and the counter's deliveries.
type mark struct {
	p        procSample
	st       *agentStatus
	self, mq float64
	n, e     uint64 // readings delivered, envelope bytes
}

func takeMark(a *agentProc, c *counter) (mark, error) {
	p, err := sampleProc(a.pid())
	if err != nil {
		return mark{}, err
	}
	st, err := a.getStatus()
	if err != nil {
		return mark{}, err
	}
	return mark{p: p, st: st, self: selfCPU(), mq: mosquittoCPU(), n: c.delivered.Load(), e: c.envBytes.Load()}, nil
}

// addWindow adds the rows every workload reports for the window m0..m1 (deliveries, the
// agent's CPU, missed and failed polls) and returns the readings delivered and the seconds.
func addWindow(t *table, wl, offeredLabel string, offered int, m0, m1 mark, a *agentProc) (n, secs float64, err error) {
	n = float64(m1.n - m0.n)
	if n == 0 {
		return 0, 0, fmt.Errorf("no readings delivered in the window\n%s", a.log.String())
	}
	secs = m1.p.at.Sub(m0.p.at).Seconds()
	missed0, failed0, _ := m0.st.missedPolls()
	missed1, failed1, _ := m1.st.missedPolls()
	m1.st.reportErrors(os.Stderr)
	t.add(wl, "readings delivered per second ("+offeredLabel+" offered)", "/s", fmt.Sprint(offered), n/secs)
	t.add(wl, "agent CPU-s per 10,000 readings delivered", "CPU-s", "≤ 0.12", (m1.p.cpu-m0.p.cpu)/n*1e4)
	t.add(wl, "agent CPU, % of one core", "%", "", 100*(m1.p.cpu-m0.p.cpu)/secs)
	t.add(wl, "polls skipped or late in the window (missed ticks)", "", "0", float64(missed1-missed0))
	t.add(wl, "failed polls in the window", "", "0", float64(failed1-failed0))
	return n, secs, nil
}

// addOthersCPU adds the driver's and Mosquitto's CPU per 10,000 readings over the window.
func addOthersCPU(t *table, wl string, m0, m1 mark, n float64) {
	t.add(wl, "driver CPU-s per 10,000 (simulators + counter; not the agent)", "CPU-s", "", (m1.self-m0.self)/n*1e4)
	t.add(wl, "Mosquitto CPU-s per 10,000 (not the agent)", "CPU-s", "", (m1.mq-m0.mq)/n*1e4)
}
