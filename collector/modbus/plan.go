package modbus

import (
	"cmp"
	"slices"
)

// Modbus function codes of the reads a plan contains.
const (
	FuncReadCoils            uint8 = 1
	FuncReadDiscreteInputs   uint8 = 2
	FuncReadHoldingRegisters uint8 = 3
	FuncReadInputRegisters   uint8 = 4
)

// Protocol limits per request (Modbus Application Protocol v1.1b3 §6.1–6.4).
const (
	MaxRegistersPerRequest = 125
	MaxBitsPerRequest      = 2000
)

// DefaultMaxGap is how many unused registers a request may read to join two tags into one
// request (bits: 16 × that many). Reading a few spare registers is cheaper than a second
// round trip; a larger gap risks reading addresses the device does not implement.
const DefaultMaxGap = 8

var funcNames = map[uint8]string{
	FuncReadCoils: "coils", FuncReadDiscreteInputs: "discrete inputs",
	FuncReadHoldingRegisters: "holding registers", FuncReadInputRegisters: "input registers",
}

// Request is one planned read: Quantity registers (or bits, for function 1 and 2) from
// Address of unit UnitID, covering Tags (tag ids, in address order).
type Request struct {
	UnitID   uint8
	Function uint8
	Address  uint16
	Quantity uint16
	Tags     []string
}

// FunctionName is the function's name for messages ("holding registers").
func (r Request) FunctionName() string { return funcNames[r.Function] }

// request is a planned Request with the tags it decodes.
type request struct {
	Request
	tags []*tag
}

// span is how many registers (or bits) a tag occupies.
func (t *tag) span() int {
	if t.typ == Bool {
		return 1
	}
	return t.typ.Words()
}

// plan coalesces tags per (unit id, function) into contiguous requests of at most maxQty
// registers (maxBits bits), bridging holes of up to maxGap registers (16·maxGap bits). Tags
// are never split: a request always holds whole tags (a single tag wider than maxQty, say a
// float64 under MaxRegisters 2, is read alone). Requests are ordered by unit id,
// function and address, so the plan is deterministic.
func plan(tags []*tag, maxGap, maxQty int) []request {
	sorted := slices.Clone(tags)
	slices.SortStableFunc(sorted, func(a, b *tag) int {
		return cmp.Or(
			cmp.Compare(a.unitID, b.unitID),
			cmp.Compare(a.fn, b.fn),
			cmp.Compare(a.addr, b.addr),
			cmp.Compare(b.span(), a.span()),
		)
	})
	var reqs []request
	var cur *request
	curEnd := 0 // exclusive end address of cur
	for _, t := range sorted {
		limit, gap := maxQty, maxGap
		if t.fn == FuncReadCoils || t.fn == FuncReadDiscreteInputs {
			limit, gap = MaxBitsPerRequest, maxGap*16
		}
		start, end := int(t.addr), int(t.addr)+t.span()
		if cur != nil && cur.UnitID == t.unitID && cur.Function == t.fn &&
			start-curEnd <= gap && max(curEnd, end)-int(cur.Address) <= limit {
			curEnd = max(curEnd, end)
		} else {
			reqs = append(reqs, request{Request: Request{UnitID: t.unitID, Function: t.fn, Address: t.addr}})
			cur = &reqs[len(reqs)-1]
			curEnd = end
		}
		cur.Quantity = uint16(curEnd - int(cur.Address))
		cur.Tags = append(cur.Tags, t.id)
		cur.tags = append(cur.tags, t)
	}
	return reqs
}
