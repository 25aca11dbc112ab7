package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
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
	// 0 means DefaultMaxGap; a negative value bridges no holes.
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
	order  Order
	scale  *reading.Value
	offset *reading.Value
	min    *reading.Value
	max    *reading.Value
}

// link is one connection to a Modbus device. Extension point for RTU and RTU over TCP,
// which need their own framing (LIBRARIES.md §2) but the same request plan and decoding.
type link interface {
	// read performs one request with the given per-request timeout.
	read(fn, unitID uint8, addr, qty uint16, timeout time.Duration) ([]byte, error)
	// close drops the connection; the next read re-dials.
	close() error
}

// tcpLink is Modbus TCP through goburrow/modbus.
type tcpLink struct {
	h *gb.TCPClientHandler
	c gb.Client
}

func newTCPLink(addr string) *tcpLink {
	h := gb.NewTCPClientHandler(addr)
	return &tcpLink{h: h, c: gb.NewClient(h)}
}

// read sets SlaveId and Timeout, plain fields of the handler: the caller serialises reads.
func (l *tcpLink) read(fn, unitID uint8, addr, qty uint16, timeout time.Duration) ([]byte, error) {
	l.h.SlaveId = unitID
	l.h.Timeout = timeout
	switch fn {
	case FuncReadCoils:
		return l.c.ReadCoils(addr, qty)
	case FuncReadDiscreteInputs:
		return l.c.ReadDiscreteInputs(addr, qty)
	case FuncReadHoldingRegisters:
		return l.c.ReadHoldingRegisters(addr, qty)
	case FuncReadInputRegisters:
		return l.c.ReadInputRegisters(addr, qty)
	}
	return nil, fmt.Errorf("unsupported function %d", fn)
}

func (l *tcpLink) close() error { return l.h.Close() }

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
	var dial string
	if src.Modbus == nil {
		errs = append(errs, errors.New("modbus: missing"))
	} else if a, err := tcpAddress(src.Modbus.URL); err != nil {
		errs = append(errs, fmt.Errorf("modbus.url: %w", err))
	} else {
		dial = a
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

	maxGap := opts.MaxGap
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
		link:        newTCPLink(dial),
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
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

// tcpAddress turns "tcp://host[:port]" into host:port.
func tcpAddress(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "tcp":
	case "rtu", "rtuovertcp":
		return "", fmt.Errorf("%q: scheme %s is not supported yet", raw, u.Scheme)
	default:
		return "", fmt.Errorf("%q: want tcp://host:port", raw)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("%q: no host", raw)
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	return net.JoinHostPort(u.Hostname(), port), nil
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
		} else if bits != (typ == Bool) {
			errs = append(errs, fmt.Errorf("type: %s does not fit register %q", ct.Type, ct.Register))
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

// Read performs one poll: every planned request in order, each under the smaller of the
// source timeout and what is left of ctx's deadline. It returns one reading per configured
// tag, in config order, all stamped with the poll's start (gateway clock).
//
// A Modbus exception is data: that request's tags are Bad with FlagException|FlagCommsLoss
// and the exception code as Status, and the poll goes on (exception 6, server busy, is
// retried a few times first). Any other error (timeout, reset, EOF, a reply that does not
// match) closes the connection, since goburrow/modbus would otherwise stay broken or one
// reply behind (LIBRARIES.md §2); the remaining tags are Bad with FlagCommsLoss (and
// FlagTimeout for timeouts) and Read returns the error so the Poller backs off.
func (s *Source) Read(ctx context.Context) ([]reading.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	out := make([]reading.Reading, len(s.tags))
	for i := range s.tags {
		t := &s.tags[i]
		out[i] = reading.Reading{Tag: t.name, Unit: t.unit, Time: now, TimeSource: reading.TimeGateway}
	}
	for ri := range s.reqs {
		r := &s.reqs[ri]
		data, err := s.do(ctx, r)
		if err == nil {
			decodeRequest(r, data, out)
			continue
		}
		if mbErr, ok := errors.AsType[*gb.ModbusError](err); ok {
			s.log.Debug("modbus exception", "unit_id", r.UnitID, "function", r.Function,
				"address", r.Address, "quantity", r.Quantity, "exception", mbErr.ExceptionCode)
			markBad(r.tags, out, reading.FlagException|reading.FlagCommsLoss, uint32(mbErr.ExceptionCode))
			continue
		}
		flags := reading.FlagCommsLoss
		if isTimeout(err) {
			flags |= reading.FlagTimeout
		}
		for _, rest := range s.reqs[ri:] {
			markBad(rest.tags, out, flags, 0)
		}
		return out, fmt.Errorf("read %s %d+%d from unit %d: %w", r.FunctionName(), r.Address, r.Quantity, r.UnitID, err)
	}
	return out, nil
}

// do performs one request, retrying exception 6 (server busy) up to busyRetries times. On
// any error that is not a Modbus exception it closes the link before returning.
func (s *Source) do(ctx context.Context, r *request) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		timeout := s.timeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
		data, err := s.link.read(r.Function, r.UnitID, r.Address, r.Quantity, timeout)
		if err == nil {
			if err = checkLength(r, data); err == nil {
				return data, nil
			}
		}
		mbErr, isException := errors.AsType[*gb.ModbusError](err)
		if !isException {
			s.log.Debug("modbus connection reset", "err", err)
			_ = s.link.close()
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
	if errors.Is(err, context.DeadlineExceeded) {
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
		if t.typ == Bool {
			raw = []byte{data[off/8] >> (off % 8) & 1}
		} else {
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
	v, ok := Decode(raw, t.typ, t.order)
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
