package modbus

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// tg is a short way to write a config tag for plan tests.
func tg(id string, unitID int, register string, addr int, typ string) config.Tag {
	return config.Tag{ID: id, Unit: "kW", Kind: "rate", UnitID: unitID, Register: register, Address: addr, Type: typ}
}

func testSource(tags ...config.Tag) config.Source {
	return config.Source{Name: "dev", Kind: "modbus", Modbus: &config.ModbusIO{URL: "tcp://127.0.0.1:1502"}, Tags: tags}
}

func planOf(t *testing.T, opts Options, tags ...config.Tag) []Request {
	t.Helper()
	s, err := NewWithOptions(testSource(tags...), nil, opts)
	require.NoError(t, err)
	return s.Plan()
}

func req(unitID, fn uint8, addr, qty uint16, tags ...string) Request {
	return Request{UnitID: unitID, Function: fn, Address: addr, Quantity: qty, Tags: tags}
}

func TestPlan(t *testing.T) {
	const hr, ir = FuncReadHoldingRegisters, FuncReadInputRegisters
	cases := []struct {
		name string
		opts Options
		tags []config.Tag
		want []Request
	}{
		{
			name: "contiguous tags coalesce",
			tags: []config.Tag{tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 2, "float32"), tg("c", 1, "holding", 4, "uint16")},
			want: []Request{req(1, hr, 0, 5, "a", "b", "c")},
		},
		{
			name: "config order does not matter",
			tags: []config.Tag{tg("c", 1, "holding", 4, "uint16"), tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 2, "float32")},
			want: []Request{req(1, hr, 0, 5, "a", "b", "c")},
		},
		{
			name: "hole of 8 is bridged",
			tags: []config.Tag{tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 10, "float32")},
			want: []Request{req(1, hr, 0, 12, "a", "b")},
		},
		{
			name: "hole of 9 is not",
			tags: []config.Tag{tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 11, "float32")},
			want: []Request{req(1, hr, 0, 2, "a"), req(1, hr, 11, 2, "b")},
		},
		{
			name: "bridging off",
			opts: Options{MaxGap: -1},
			tags: []config.Tag{tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 2, "uint16"), tg("c", 1, "holding", 4, "uint16")},
			want: []Request{req(1, hr, 0, 3, "a", "b"), req(1, hr, 4, 1, "c")},
		},
		{
			name: "larger gap option",
			opts: Options{MaxGap: 20},
			tags: []config.Tag{tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 22, "float32")},
			want: []Request{req(1, hr, 0, 24, "a", "b")},
		},
		{
			name: "units and functions are separate requests, in order",
			tags: []config.Tag{
				tg("x", 2, "holding", 0, "uint16"), tg("y", 1, "input", 0, "uint16"),
				tg("z", 1, "holding", 1, "uint16"), tg("w", 1, "holding", 0, "uint16"),
			},
			want: []Request{req(1, hr, 0, 2, "w", "z"), req(1, ir, 0, 1, "y"), req(2, hr, 0, 1, "x")},
		},
		{
			name: "overlapping tags share a request",
			tags: []config.Tag{tg("lo", 1, "holding", 1, "uint16"), tg("all", 1, "holding", 0, "uint32"), tg("signed", 1, "holding", 0, "int16")},
			want: []Request{req(1, hr, 0, 2, "all", "signed", "lo")},
		},
		{
			name: "a tag never straddles the 125 limit",
			opts: Options{MaxGap: 200},
			tags: []config.Tag{tg("a", 1, "holding", 0, "uint16"), tg("b", 1, "holding", 120, "uint16"), tg("c", 1, "holding", 124, "uint32")},
			want: []Request{req(1, hr, 0, 121, "a", "b"), req(1, hr, 124, 2, "c")},
		},
		{
			name: "exactly 125",
			opts: Options{MaxGap: 200},
			tags: []config.Tag{tg("a", 1, "holding", 0, "uint16"), tg("b", 1, "holding", 121, "uint64")},
			want: []Request{req(1, hr, 0, 125, "a", "b")},
		},
		{
			name: "smaller register limit",
			opts: Options{MaxRegisters: 4},
			tags: []config.Tag{tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 2, "float32"), tg("c", 1, "holding", 4, "float32")},
			want: []Request{req(1, hr, 0, 4, "a", "b"), req(1, hr, 4, 2, "c")},
		},
		{
			name: "bits bridge 16 × the gap",
			tags: []config.Tag{tg("a", 1, "coil", 0, ""), tg("b", 1, "coil", 129, "bool"), tg("c", 1, "coil", 300, ""), tg("d", 1, "discrete", 0, "")},
			want: []Request{req(1, FuncReadCoils, 0, 130, "a", "b"), req(1, FuncReadCoils, 300, 1, "c"), req(1, FuncReadDiscreteInputs, 0, 1, "d")},
		},
		{
			name: "top of the address space",
			tags: []config.Tag{tg("a", 1, "input", 65532, "uint64")},
			want: []Request{req(1, ir, 65532, 4, "a")},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, planOf(t, c.opts, c.tags...))
		})
	}
}

func TestPlan125Limit(t *testing.T) {
	var tags []config.Tag
	for i := range 100 {
		tags = append(tags, tg(fmt.Sprintf("t%d", i), 1, "holding", 2*i, "float32"))
	}
	p := planOf(t, Options{}, tags...)
	require.Equal(t, []Request{
		req(1, FuncReadHoldingRegisters, 0, 124, ids(0, 62)...),
		req(1, FuncReadHoldingRegisters, 124, 76, ids(62, 100)...),
	}, p)
}

func ids(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("t%d", i))
	}
	return s
}

// TestPlanProperties checks random configurations: every tag lies wholly inside exactly one
// request of its unit and function, requests respect the limits, and each request starts and
// ends on a tag.
func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	types := []string{"uint16", "int16", "uint32", "float32", "int64", "float64"}
	for round := range 200 {
		var tags []config.Tag
		n := 1 + rng.IntN(60)
		for i := range n {
			reg := []string{"holding", "input", "coil"}[rng.IntN(3)]
			typ := types[rng.IntN(len(types))]
			if reg == "coil" {
				typ = "bool"
			}
			tags = append(tags, tg(fmt.Sprintf("t%d", i), 1+rng.IntN(2), reg, rng.IntN(400), typ))
		}
		opts := Options{MaxGap: rng.IntN(12) - 1, MaxRegisters: rng.IntN(130)}
		s, err := NewWithOptions(testSource(tags...), nil, opts)
		require.NoError(t, err)
		limit := opts.MaxRegisters
		if limit <= 0 || limit > 125 {
			limit = 125
		}
		covered := map[string]int{}
		for _, r := range s.reqs {
			qmax := limit
			if r.Function == FuncReadCoils {
				qmax = MaxBitsPerRequest
			}
			if len(r.tags) > 1 { // a single tag wider than MaxRegisters is read alone
				require.LessOrEqual(t, int(r.Quantity), qmax, "round %d", round)
			}
			require.Positive(t, r.Quantity)
			lo, hi := 1<<20, 0
			for _, tg := range r.tags {
				require.Equal(t, r.UnitID, tg.unitID)
				require.Equal(t, r.Function, tg.fn)
				require.GreaterOrEqual(t, tg.addr, r.Address, "round %d: %s starts before its request", round, tg.id)
				require.LessOrEqual(t, int(tg.addr)+tg.span(), int(r.Address)+int(r.Quantity), "round %d: %s straddles", round, tg.id)
				lo, hi = min(lo, int(tg.addr)), max(hi, int(tg.addr)+tg.span())
				covered[tg.id]++
			}
			require.Equal(t, int(r.Address), lo)
			require.Equal(t, int(r.Address)+int(r.Quantity), hi)
		}
		require.Len(t, covered, n)
		for id, c := range covered {
			require.Equal(t, 1, c, id)
		}
	}
}

func TestNewValidation(t *testing.T) {
	bad := func(mut func(*config.Source)) config.Source {
		s := testSource(tg("a", 1, "holding", 0, "float32"))
		mut(&s)
		return s
	}
	minmax := func(lo, hi string) func(*config.Source) {
		return func(s *config.Source) {
			l, _ := reading.ParseValue(lo)
			h, _ := reading.ParseValue(hi)
			s.Tags[0].Min, s.Tags[0].Max = &config.Decimal{Value: l}, &config.Decimal{Value: h}
		}
	}
	cases := []struct {
		name string
		src  config.Source
		want []string
	}{
		{"no modbus section", bad(func(s *config.Source) { s.Modbus = nil }), []string{"modbus: missing"}},
		{"rtu with a host", bad(func(s *config.Source) { s.Modbus.URL = "rtu://host/dev/ttyS0" }), []string{"modbus.url", "a device path, no host"}},
		{"rtu baud", bad(func(s *config.Source) { s.Modbus.URL, s.Modbus.Baud = "rtu:///dev/ttyS0", 12345 }), []string{"modbus.url: baud 12345 is not a standard rate"}},
		{"rtu parity", bad(func(s *config.Source) { s.Modbus.URL, s.Modbus.Parity = "rtu:///dev/ttyS0", "X" }), []string{`parity "X"`}},
		{"rtu stop bits", bad(func(s *config.Source) { s.Modbus.URL, s.Modbus.StopBits = "rtu:///dev/ttyS0", 3 }), []string{"stop_bits 3"}},
		{"rtuovertcp without host", bad(func(s *config.Source) { s.Modbus.URL = "rtuovertcp:///x" }), []string{"modbus.url", "no host"}},
		{"max_gap", bad(func(s *config.Source) { g := 126; s.Modbus.MaxGap = &g }), []string{"modbus.max_gap: 126 is out of range 0..125"}},
		{"bad scheme", bad(func(s *config.Source) { s.Modbus.URL = "http://x" }), []string{"want tcp://host:port"}},
		{"wrong kind", bad(func(s *config.Source) { s.Kind = "opcua" }), []string{`kind: "opcua"`}},
		{"no tags", bad(func(s *config.Source) { s.Tags = nil }), []string{"tags: none"}},
		{"unit", bad(func(s *config.Source) { s.Tags[0].Unit = "kwh" }), []string{`tags[0]: unit: "kwh"`}},
		{"unit id", bad(func(s *config.Source) { s.Tags[0].UnitID = 256 }), []string{"tags[0]: unit_id: 256"}},
		{"register", bad(func(s *config.Source) { s.Tags[0].Register = "coils" }), []string{`register: "coils"`}},
		{"type", bad(func(s *config.Source) { s.Tags[0].Type = "float16" }), []string{`type: unknown type "float16"`}},
		{"bool on a register", bad(func(s *config.Source) { s.Tags[0].Type = "bool" }), []string{`bit: a bool on register "holding" needs bit (0..15)`}},
		{"float on a coil", bad(func(s *config.Source) { s.Tags[0].Register = "coil" }), []string{`type: float32 does not fit register "coil"`}},
		{"order", bad(func(s *config.Source) { s.Tags[0].Order = "ADBC" }), []string{`order: unknown order "ADBC"`}},
		{"address", bad(func(s *config.Source) { s.Tags[0].Address = 70000 }), []string{"address: 70000 is out of range 0..65535"}},
		{"address end", bad(func(s *config.Source) { s.Tags[0].Address = 65535 }), []string{"runs past register 65535"}},
		{"min above max", bad(minmax("10", "9.5")), []string{"min: 10 is above max 9.5"}},
		{"duplicate id and empty id, all reported", bad(func(s *config.Source) {
			s.Tags = append(s.Tags, tg("a", 1, "holding", 2, "uint16"), tg("", 1, "holding", 3, "uint16"))
		}), []string{`tags[1].id: "a" already used by tags[0]`, "tags[2]: id: empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.src, nil)
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	// Defaults: empty register, type and order are holding, uint16 (bool for bits), ABCD.
	s, err := New(testSource(config.Tag{ID: "x", Unit: "1", Address: 7}, config.Tag{ID: "y", Unit: "1", Register: "discrete"}), nil)
	require.NoError(t, err)
	require.Equal(t, Uint16, s.tags[0].typ)
	require.Equal(t, ABCD, s.tags[0].order)
	require.Equal(t, FuncReadHoldingRegisters, s.tags[0].fn)
	require.Equal(t, Bool, s.tags[1].typ)
	require.Equal(t, "dev.x", s.tags[0].name)
}

func TestPlanMaxGapFromConfig(t *testing.T) {
	tags := []config.Tag{tg("a", 1, "holding", 0, "float32"), tg("b", 1, "holding", 3, "uint16"), tg("c", 1, "holding", 20, "uint16")}
	for _, c := range []struct {
		name string
		gap  *int
		want []Request
	}{
		{"absent: default 8", nil, []Request{req(1, 3, 0, 4, "a", "b"), req(1, 3, 20, 1, "c")}},
		{"0: no bridging", new(0), []Request{req(1, 3, 0, 2, "a"), req(1, 3, 3, 1, "b"), req(1, 3, 20, 1, "c")}},
		{"16", new(16), []Request{req(1, 3, 0, 21, "a", "b", "c")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := testSource(tags...)
			src.Modbus.MaxGap = c.gap
			s, err := New(src, nil)
			require.NoError(t, err)
			require.Equal(t, c.want, s.Plan())
		})
	}
}
