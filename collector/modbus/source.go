package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"time"

	gb "github.com/goburrow/modbus"

	"github.com/mrv-agent/mrv-agent/config"
	"github.com/mrv-agent/mrv-agent/reading"
)

// Defaults for Options' zero values.
const (
	DefaultTimeout     = 3 * time.Second // per request, when the source sets no timeout
	DefaultBusyRetries = 2
	DefaultBusyDelay   = 50 * time.Millisecond
	defaultPort        = "502"
)

// Options tune a Source beyond what the config says. The zero value is the default.
type Options struct {
	// MaxGap is how many unused registers may be read to join two tags into one request.
	// 0 means the config's modbus.max_gap, or DefaultMaxGap; a negative value bridges no holes.
	MaxGap int
	// MaxRegisters caps the registers per request (devices with small buffers want fewer).
	// 0 or more than 125 means 125. A tag wider than this is read alone.
	MaxRegisters int
	// BusyRetries is how often a request answered with exception 6 (server busy) is retried
	// within one poll. 0 means DefaultBusyRetries; negative means never.
	BusyRetries int
	// BusyDelay is the wait before such a retry. 0 means DefaultBusyDelay.
	BusyDelay time.Duration
	// Now is the gateway clock that timestamps readings. nil means time.Now.
	Now func() time.Time
}

// tag is one configured tag, resolved at New.
type tag struct {
	id     string
	name   string // "<source>.<id>"
	unit   reading.Unit
	index  int // position in the config, and in each poll's readings
	unitID uint8
	fn     uint8
	addr   uint16
	typ    DataType
	regBit bool  // a bool in a holding or input register, at bit
	bit    uint8 // 0 = least significant
	order  Order
	scale  *reading.Value
	offset *reading.Value
	min    *reading.Value
	max    *reading.Value
}

// Source polls one Modbus device (one connection, possibly several unit ids) and
// implements collector.Source.
type Source struct {
	name        string
	log         *slog.Logger
	timeout     time.Duration
	busyRetries int
	busyDelay   time.Duration
	now         func() time.Time
	tags        []tag
	reqs        []request

	transport string
	units     []int // per request index: how many distinct unit ids are polled from it on

	// mu serialises polls and Close: the link's unit id and timeout are set per request.
	mu   sync.Mutex
	link link
}

// New validates src and plans its requests. It does no I/O: the connection is dialled by
// the first Read. Errors list every problem (errors.Join), each prefixed with its path inside
// the source ("tags[3].address: ..."); the caller adds which source. log may be nil; New adds
// the "source" attribute itself.
func New(src config.Source, log *slog.Logger) (*Source, error) {
	return NewWithOptions(src, log, Options{})
}

// NewWithOptions is New with tuning options.
func NewWithOptions(src config.Source, log *slog.Logger, opts Options) (*Source, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if src.Name == "" {
		errs = append(errs, errors.New("name: empty"))
	}
	if src.Kind != "modbus" {
		errs = append(errs, fmt.Errorf("kind: %q is not modbus", src.Kind))
	}
	var ep endpoint
	maxGap := opts.MaxGap
	if src.Modbus == nil {
		errs = append(errs, errors.New("modbus: missing"))
	} else {
		var err error
		if ep, err = parseEndpoint(src.Modbus); err != nil {
			errs = append(errs, fmt.Errorf("modbus.url: %w", err))
		}
		if g := src.Modbus.MaxGap; g != nil && maxGap == 0 {
			switch {
			case *g < 0 || *g > MaxRegistersPerRequest:
				errs = append(errs, fmt.Errorf("modbus.max_gap: %d is out of range 0..%d", *g, MaxRegistersPerRequest))
			case *g == 0:
				maxGap = -1
			default:
				maxGap = *g
			}
		}
	}
	if len(src.Tags) == 0 {
		errs = append(errs, errors.New("tags: none"))
	}
	tags := make([]tag, len(src.Tags))
	seen := make(map[string]int, len(src.Tags))
	for i, ct := range src.Tags {
		t, err := resolveTag(src.Name, i, ct)
		if err != nil {
			errs = append(errs, fmt.Errorf("tags[%d]: %w", i, err))
		}
		if j, dup := seen[ct.ID]; dup && ct.ID != "" {
			errs = append(errs, fmt.Errorf("tags[%d].id: %q already used by tags[%d]", i, ct.ID, j))
		}
		seen[ct.ID] = i
		tags[i] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err // the caller names the source (sources[i] or its name)
	}

	switch {
	case maxGap == 0:
		maxGap = DefaultMaxGap
	case maxGap < 0:
		maxGap = 0
	}
	maxQty := opts.MaxRegisters
	if maxQty <= 0 || maxQty > MaxRegistersPerRequest {
		maxQty = MaxRegistersPerRequest
	}
	ptrs := make([]*tag, len(tags))
	for i := range tags {
		ptrs[i] = &tags[i]
	}
	s := &Source{
		name:        src.Name,
		log:         log.With("source", src.Name),
		timeout:     src.Timeout.D(),
		busyRetries: opts.BusyRetries,
		busyDelay:   opts.BusyDelay,
		now:         opts.Now,
		tags:        tags,
		reqs:        plan(ptrs, maxGap, maxQty),
		link:        newLink(ep),
		transport:   ep.transport,
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	s.units = make([]int, len(s.reqs))
	for i := len(s.reqs) - 1; i >= 0; i-- {
		switch {
		case i == len(s.reqs)-1:
			s.units[i] = 1
		case s.reqs[i].UnitID != s.reqs[i+1].UnitID:
			s.units[i] = s.units[i+1] + 1
		default:
			s.units[i] = s.units[i+1]
		}
	}
	switch {
	case s.busyRetries == 0:
		s.busyRetries = DefaultBusyRetries
	case s.busyRetries < 0:
		s.busyRetries = 0
	}
	if s.busyDelay <= 0 {
		s.busyDelay = DefaultBusyDelay
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

func resolveTag(source string, i int, ct config.Tag) (tag, error) {
	t := tag{id: ct.ID, name: source + "." + ct.ID, unit: reading.Unit(ct.Unit), index: i}
	var errs []error
	if ct.ID == "" {
		errs = append(errs, errors.New("id: empty"))
	}
	if !t.unit.Valid() {
		errs = append(errs, fmt.Errorf("unit: %q is not one of %s", ct.Unit, reading.UnitList()))
	}
	if ct.UnitID < 0 || ct.UnitID > 255 {
		errs = append(errs, fmt.Errorf("unit_id: %d is out of range 0..255", ct.UnitID))
	}
	t.unitID = uint8(ct.UnitID)
	bits := false
	switch ct.Register {
	case "holding", "":
		t.fn = FuncReadHoldingRegisters
	case "input":
		t.fn = FuncReadInputRegisters
	case "coil":
		t.fn, bits = FuncReadCoils, true
	case "discrete":
		t.fn, bits = FuncReadDiscreteInputs, true
	default:
		errs = append(errs, fmt.Errorf("register: %q is not holding, input, coil or discrete", ct.Register))
	}
	switch {
	case ct.Type == "" && bits:
		t.typ = Bool
	case ct.Type == "":
		t.typ = Uint16
	default:
		typ, err := ParseDataType(ct.Type)
		if err != nil {
			errs = append(errs, fmt.Errorf("type: %w", err))
		} else if bits && typ != Bool {
			errs = append(errs, fmt.Errorf("type: %s does not fit register %q", ct.Type, ct.Register))
		} else if !bits && typ == Bool && ct.Bit == nil {
			errs = append(errs, fmt.Errorf("bit: a bool on register %q needs bit (0..15)", ct.Register))
		}
		t.typ = typ
	}
	if ct.Order != "" {
		o, err := ParseOrder(ct.Order)
		if err != nil {
			errs = append(errs, fmt.Errorf("order: %w", err))
		}
		t.order = o
	}
	if ct.Address < 0 || ct.Address > math.MaxUint16 {
		errs = append(errs, fmt.Errorf("address: %d is out of range 0..65535", ct.Address))
	} else if t.typ != 0 && ct.Address+t.span() > math.MaxUint16+1 {
		errs = append(errs, fmt.Errorf("address: %s at %d runs past register 65535", t.typ, ct.Address))
	}
	if ct.Bit != nil {
		switch {
		case *ct.Bit < 0 || *ct.Bit > 15:
			errs = append(errs, fmt.Errorf("bit: %d is out of range 0..15", *ct.Bit))
		case bits || t.typ != Bool:
			errs = append(errs, errors.New("bit: only applies to type bool on a holding or input register"))
		default:
			t.regBit, t.bit = true, uint8(*ct.Bit)
		}
	}
	t.addr = uint16(ct.Address)
	t.scale, t.offset = decimal(ct.Scale), decimal(ct.Offset)
	t.min, t.max = decimal(ct.Min), decimal(ct.Max)
	if t.min != nil && t.max != nil && t.min.Cmp(*t.max) > 0 {
		errs = append(errs, fmt.Errorf("min: %s is above max %s", t.min, t.max))
	}
	return t, errors.Join(errs...)
}

func decimal(d *config.Decimal) *reading.Value {
	if d == nil {
		return nil
	}
	v := d.Value
	return &v
}

// Name returns the source's name.
func (s *Source) Name() string { return s.name }

// Transport is how the source reaches its devices: "tcp", "rtu" or "rtuovertcp".
func (s *Source) Transport() string { return s.transport }

// Plan returns the requests one poll makes, in order (for `validate --plan` and tests).
func (s *Source) Plan() []Request {
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = r.Request
		out[i].Tags = append([]string(nil), r.Tags...)
	}
	return out
}

// Close closes the connection. A later Read dials again.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link.close()
}

// Read performs one poll: every planned request in order, unit after unit, and returns one
// reading per configured tag, in config order, all stamped with the poll's start (gateway
// clock).
//
// A Modbus exception is data: that request's tags are Bad with FlagException|FlagCommsLoss
// and the exception code as Status, and the poll goes on (exception 6, server busy, is
// retried a few times first). Any other error (timeout, reset, EOF, a reply that does not
// match) closes the connection, since goburrow/modbus would otherwise stay broken or one
// reply behind (LIBRARIES.md §2), and marks that unit's tags Bad with FlagCommsLoss (and
// FlagTimeout for timeouts); the poll goes on with the next unit id, which re-dials.
//
// Units share the poll's deadline in turn: a request gets the source timeout, but no more
// than an equal share of what is left of ctx's deadline among the units not yet polled, so a
// dead unit costs at most its share and every unit behind it still gets its turn.
//
// Read returns an error, so that the Poller backs off and the source counts as down, when
// no request got an answer (data or exception); one silent unit among answering ones only
// makes its own readings Bad.
func (s *Source) Read(ctx context.Context) ([]reading.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	out := make([]reading.Reading, len(s.tags))
	for i := range s.tags {
		t := &s.tags[i]
		out[i] = reading.Reading{Tag: t.name, Unit: t.unit, Time: now, TimeSource: reading.TimeGateway}
	}
	var (
		answered bool
		firstErr error
		dead     = -1 // unit id whose remaining requests are skipped this poll
		deadFlag reading.Flag
	)
	for ri := range s.reqs {
		r := &s.reqs[ri]
		if int(r.UnitID) == dead {
			markBad(r.tags, out, deadFlag, 0)
			continue
		}
		data, err := s.do(ctx, r, s.units[ri])
		if err == nil {
			answered = true
			decodeRequest(r, data, out)
			continue
		}
		if mbErr, ok := errors.AsType[*gb.ModbusError](err); ok {
			answered = true
			s.log.Debug("modbus exception", "unit_id", r.UnitID, "function", r.Function,
				"address", r.Address, "quantity", r.Quantity, "exception", mbErr.ExceptionCode)
			markBad(r.tags, out, reading.FlagException|reading.FlagCommsLoss, uint32(mbErr.ExceptionCode))
			continue
		}
		flags := reading.FlagCommsLoss
		if isTimeout(err) {
			flags |= reading.FlagTimeout
		}
		err = fmt.Errorf("read %s %d+%d from unit %d: %w", r.FunctionName(), r.Address, r.Quantity, r.UnitID, err)
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			for _, rest := range s.reqs[ri:] {
				markBad(rest.tags, out, flags, 0)
			}
			return out, firstErr
		}
		s.log.Debug("modbus unit failed", "unit_id", r.UnitID, "err", err)
		markBad(r.tags, out, flags, 0)
		dead, deadFlag = int(r.UnitID), flags
	}
	if answered {
		return out, nil
	}
	return out, firstErr
}

// do performs one request, retrying exception 6 (server busy) up to busyRetries times.
// units is how many unit ids, this request's included, the poll has still to visit: the
// request may use that share of what is left of ctx's deadline (and never more than the
// source timeout). On any error that is not a Modbus exception the link is left closed.
func (s *Source) do(ctx context.Context, r *request, units int) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		timeout := s.timeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl)/time.Duration(max(units, 1)))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
		data, err := s.link.read(ctx, r.Function, r.UnitID, r.Address, r.Quantity, timeout)
		if err == nil {
			if err = checkLength(r, data); err == nil {
				return data, nil
			}
			_ = s.link.close() // a reply of the wrong size: the stream cannot be trusted
		}
		mbErr, isException := errors.AsType[*gb.ModbusError](err)
		if !isException {
			s.log.Debug("modbus connection reset", "err", err)
			return nil, err
		}
		if mbErr.ExceptionCode != gb.ExceptionCodeServerDeviceBusy || attempt >= s.busyRetries {
			return nil, err
		}
		t := time.NewTimer(s.busyDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err // report the exception; the deadline is checked by the next request
		case <-t.C:
		}
	}
}

// checkLength refuses a reply that does not carry exactly the requested registers or bits.
func checkLength(r *request, data []byte) error {
	want := 2 * int(r.Quantity)
	if r.Function == FuncReadCoils || r.Function == FuncReadDiscreteInputs {
		want = (int(r.Quantity) + 7) / 8
	}
	if len(data) != want {
		return fmt.Errorf("reply has %d data bytes, want %d", len(data), want)
	}
	return nil
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

func markBad(tags []*tag, out []reading.Reading, flags reading.Flag, status uint32) {
	for _, t := range tags {
		r := &out[t.index]
		r.HasValue = false
		r.Value = reading.Value{}
		r.Raw = nil
		r.Quality = reading.Quality{Severity: reading.Bad, Flags: flags, Status: status}
	}
}

// decodeRequest fills the readings of r's tags from the reply data (length already checked).
func decodeRequest(r *request, data []byte, out []reading.Reading) {
	for _, t := range r.tags {
		off := int(t.addr - r.Address)
		var raw []byte
		switch {
		case t.regBit:
			raw = data[2*off : 2*off+2 : 2*off+2]
		case t.typ == Bool:
			raw = []byte{data[off/8] >> (off % 8) & 1}
		default:
			n := 2 * t.typ.Words()
			raw = data[2*off : 2*off+n : 2*off+n]
		}
		convert(t, raw, &out[t.index])
	}
}

// convert sets value and quality of one reading from the tag's raw bytes: decode at the
// tag's own width, then scale and offset in exact decimal, then the range check.
func convert(t *tag, raw []byte, r *reading.Reading) {
	r.Raw = raw
	var v reading.Value
	var ok bool
	if t.regBit {
		v, ok = DecodeBit(raw, t.order, int(t.bit))
	} else {
		v, ok = Decode(raw, t.typ, t.order)
	}
	if ok && t.scale != nil {
		v, ok = v.Mul(*t.scale)
	}
	if ok && t.offset != nil {
		v, ok = v.Add(*t.offset)
	}
	if !ok {
		r.Quality = reading.Quality{Severity: reading.Bad, Flags: reading.FlagNoValue}
		return
	}
	r.Value, r.HasValue = v, true
	if (t.min != nil && v.Cmp(*t.min) < 0) || (t.max != nil && v.Cmp(*t.max) > 0) {
		r.Quality = reading.Quality{Severity: reading.Bad, Flags: reading.FlagOutOfRange}
	}
}
