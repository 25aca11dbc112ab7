package emissions

import (
	"encoding/json"
	"fmt"
)

// snapshotVersion is bumped whenever the state's encoding changes meaning; Restore
// refuses another version (the agent then starts the calculator afresh, and the windows
// of the gap are flagged).
const snapshotVersion = 1

// Snapshot encodes the calculator's whole state: readings observed but not yet applied,
// the held values and counter start points, open and retained windows, year-to-date
// statistics. Commit it in the same buffer transaction as the blocks whose readings it
// has seen and the derived records Advance returned, so that after a crash the state and
// the sealed records agree.
func (c *Calculator) Snapshot() ([]byte, error) {
	b, err := json.Marshal(&c.st)
	if err != nil {
		return nil, fmt.Errorf("emissions snapshot: %w", err)
	}
	return b, nil
}

// Restore replaces the state with a snapshot taken by a calculator of the same
// configuration. Emissions are matched by name and method; one that the snapshot lacks
// (a new emission) starts afresh, one that the configuration lacks is dropped. On error
// the calculator is unchanged.
func (c *Calculator) Restore(data []byte) error {
	var st calcState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("emissions restore: %w", err)
	}
	if st.Version != snapshotVersion {
		return fmt.Errorf("emissions restore: snapshot version %d, want %d", st.Version, snapshotVersion)
	}
	byName := map[string]*jobState{}
	for _, js := range st.Jobs {
		if js != nil {
			byName[js.Name] = js
		}
	}
	states := make([]*jobState, len(c.jobs))
	for i, j := range c.jobs {
		js, ok := byName[j.cfg.Name]
		switch {
		case !ok || js.Method != j.cfg.Method || len(js.Roles) != len(j.roles):
			js = newJobState(j.cfg.Name, j.cfg.Method, len(j.roles))
		default:
			if err := js.check(len(j.roles)+j.channels, len(j.roles), len(st.Srcs)); err != nil {
				return fmt.Errorf("emissions restore %s: %w", j.cfg.Name, err)
			}
		}
		states[i] = js
	}
	for i, j := range c.jobs {
		j.st = states[i]
		j.hcS, j.hcE = 0, 0
	}
	c.st = calcState{Version: snapshotVersion, Srcs: st.Srcs, Jobs: states}
	c.srcIdx = make(map[srcKey]int, len(st.Srcs))
	for i, k := range st.Srcs {
		c.srcIdx[k] = i
	}
	return nil
}

// check refuses a decoded state that would index out of range: the snapshot comes from
// disk, and a bad one must be an error, never a panic.
func (js *jobState) check(aggs, roles, srcs int) error {
	if js.Minutes == nil {
		js.Minutes = map[int64]*bucket{}
	}
	if js.Hours == nil {
		js.Hours = map[int64]*bucket{}
	}
	if js.Periods == nil {
		js.Periods = map[string]*period{}
	}
	if js.LastValid == nil {
		js.LastValid = map[int]int64{}
	}
	okB := func(b *bucket) error {
		if b == nil || len(b.Aggs) != aggs {
			return fmt.Errorf("window with %d aggregates, want %d", lenAggs(b), aggs)
		}
		for _, in := range b.Inputs {
			if in.Src < 0 || in.Src >= srcs {
				return fmt.Errorf("input source %d out of range", in.Src)
			}
		}
		return nil
	}
	for _, m := range []map[int64]*bucket{js.Minutes, js.Hours} {
		for _, b := range m {
			if err := okB(b); err != nil {
				return err
			}
		}
	}
	for _, b := range js.Batches {
		if err := okB(b); err != nil {
			return err
		}
	}
	for _, p := range js.Pending {
		if p.Role < 0 || p.Role >= roles || p.Src < 0 || p.Src >= srcs {
			return fmt.Errorf("pending reading out of range")
		}
	}
	for _, p := range js.Periods {
		if p == nil || p.Hours == nil {
			return fmt.Errorf("empty period")
		}
		for _, h := range p.Hours {
			if h == nil {
				return fmt.Errorf("empty hour in period")
			}
			for _, in := range h.Inputs {
				if in.Src < 0 || in.Src >= srcs {
					return fmt.Errorf("input source %d out of range", in.Src)
				}
			}
		}
	}
	return nil
}

func lenAggs(b *bucket) int {
	if b == nil {
		return 0
	}
	return len(b.Aggs)
}
