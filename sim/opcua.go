package sim

import (
	"context"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/mrv-agent/mrv-agent/reading"
)

// KilnNamespace is the namespace URI of the kiln's OPC UA nodes: a tag's node is
// "nsu=urn:mrv-agent:sim:kiln;s=<point id>" (e.g. s=fuel_gas_flow).
const KilnNamespace = "urn:mrv-agent:sim:kiln"

// PotLineNamespace is the namespace URI of the pot line's OPC UA nodes
// ("nsu=urn:mrv-agent:sim:potline;s=<point id>", e.g. s=line_current).
const PotLineNamespace = "urn:mrv-agent:sim:potline"

// OPCUAOptions configure an OPC UA simulator. The zero value is usable.
type OPCUAOptions struct {
	// Now is the clock the process values (and their source timestamps) come from. nil
	// means time.Now.
	Now func() time.Time
	// Tick is how often values are pushed to subscribers (ChangeNotification), together
	// with the server's CurrentTime. 0 means 1s; negative means never (tests push with
	// Notify).
	Tick time.Duration
	// Variables adds that many Double variables ns=<kiln ns>;s=V00000 … (the benchmark
	// workload), each changing at every tick.
	Variables int
	// Security adds an endpoint with this policy (e.g. "Basic256Sha256") and mode
	// SignAndEncrypt, with Certificate and Key; gopcua v0.8.0 cannot complete such a
	// handshake (LIBRARIES.md §1), but the endpoint and its certificate are advertised,
	// which is what trust checks need. The None endpoint is always there.
	Security    string
	Certificate []byte
	Key         *rsa.PrivateKey
	// Advertise lists more host:port addresses the server answers GetEndpoints for (a
	// Relay in front of it): the gopcua server returns only the endpoints whose URL
	// matches the one the client asked with.
	Advertise []string
	// Log receives the server's messages at Debug. nil discards them.
	Log *slog.Logger
}

// OPCUAPoint is one kiln variable as an OPC UA node.
type OPCUAPoint struct {
	Point
	Node     string // "nsu=urn:mrv-agent:sim:kiln;s=<id>"
	DataType string // Float, Double or UInt32
}

// OPCUAPoints returns the kiln's points as OPC UA nodes. Float32 points are Float; the
// counter with a scale (fuel_gas_total) is published scaled, as a Double; the other
// counter is a UInt32.
func OPCUAPoints() []OPCUAPoint { return opcuaPoints(kilnPoints, KilnNamespace) }

// PotLineOPCUAPoints returns the pot line's points as OPC UA nodes, typed like the kiln's;
// the anode-effect states are Boolean.
func PotLineOPCUAPoints() []OPCUAPoint { return opcuaPoints(potLinePoints, PotLineNamespace) }

func opcuaPoints(points []Point, namespace string) []OPCUAPoint {
	var out []OPCUAPoint
	for _, p := range points {
		dt := "Float"
		switch {
		case p.Type == "bool":
			dt = "Boolean"
		case p.Type != "float32" && p.Scale != "":
			dt = "Double"
		case p.Type != "float32":
			dt = "UInt32"
		}
		out = append(out, OPCUAPoint{Point: p, Node: "nsu=" + namespace + ";s=" + p.ID, DataType: dt})
	}
	return out
}

// OPCUAServer is the kiln and the pot line on a gopcua server on loopback (security None).
type OPCUAServer struct {
	srv    *server.Server
	port   int
	kiln   *Kiln    // values only: no Modbus server
	pot    *PotLine // values only: no Modbus server
	now    func() time.Time
	nodes  []*server.Node
	vars   []*server.Node
	clock  *ua.NodeID
	seq    atomic.Uint64 // ticks so far: the benchmark variables' values
	status atomic.Uint32 // ua.StatusCode the kiln nodes report (fault injection)
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// StartOPCUA starts the kiln's OPC UA server on host (a free port is picked first: the
// gopcua server cannot bind port 0 and report it).
func StartOPCUA(host string, opts OPCUAOptions) (*OPCUAServer, error) {
	port, err := FreePort(host)
	if err != nil {
		return nil, fmt.Errorf("opcua sim: %w", err)
	}
	o := &OPCUAServer{port: port, now: opts.Now}
	if o.now == nil {
		o.now = time.Now
	}
	o.kiln = &Kiln{device: device{now: o.now}}
	o.kiln.t0 = unixSeconds(o.now())
	o.kiln.c0 = [2]float64{12345678.9, 4567890}
	o.pot = &PotLine{device: device{now: o.now, t0: o.kiln.t0}}

	logger := opts.Log
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	sopts := []server.Option{
		server.EnableSecurity("None", ua.MessageSecurityModeNone),
		server.EnableAuthMode(ua.UserTokenTypeAnonymous),
		server.EndPoint(host, port),
		server.ServerName("mrv-agent kiln simulator"),
		server.SetLogger(gopcuaLogger{logger}),
	}
	for _, a := range opts.Advertise {
		h, p, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("opcua sim advertise %q: %w", a, err)
		}
		pn, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("opcua sim advertise %q: %w", a, err)
		}
		sopts = append(sopts, server.EndPoint(h, pn))
	}
	if opts.Security != "" {
		sopts = append(sopts, server.EnableSecurity(opts.Security, ua.MessageSecurityModeSignAndEncrypt),
			server.Certificate(opts.Certificate), server.PrivateKey(opts.Key))
	}
	o.srv = server.New(sopts...)
	ns := server.NewNodeNameSpace(o.srv, KilnNamespace)
	root, err := o.srv.Namespace(0)
	if err != nil {
		return nil, err
	}
	if rn, ok := root.(*server.NodeNameSpace); ok {
		rn.Objects().AddRef(ns.Objects(), server.RefTypeIDOrganizes, true)
	}
	for _, p := range OPCUAPoints() {
		n := ns.AddNewVariableStringNode(p.ID, o.valueFunc(p, o.kiln.ValueAt))
		ns.Objects().AddRef(n, server.RefTypeIDHasComponent, true)
		o.nodes = append(o.nodes, n)
	}
	pns := server.NewNodeNameSpace(o.srv, PotLineNamespace)
	if rn, ok := root.(*server.NodeNameSpace); ok {
		rn.Objects().AddRef(pns.Objects(), server.RefTypeIDOrganizes, true)
	}
	for _, p := range PotLineOPCUAPoints() {
		n := pns.AddNewVariableStringNode(p.ID, o.valueFunc(p, o.pot.ValueAt))
		pns.Objects().AddRef(n, server.RefTypeIDHasComponent, true)
		o.nodes = append(o.nodes, n)
	}
	for i := range opts.Variables {
		n := ns.AddNewVariableStringNode(fmt.Sprintf("V%05d", i), o.varFunc(i))
		ns.Objects().AddRef(n, server.RefTypeIDHasComponent, true)
		o.vars = append(o.vars, n)
	}
	o.clock = ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime)

	ctx, cancel := context.WithCancel(context.Background())
	o.cancel = cancel
	if err := o.srv.Start(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("opcua sim start: %w", err)
	}
	tick := opts.Tick
	if tick == 0 {
		tick = time.Second
	}
	if tick > 0 {
		o.wg.Add(1)
		go o.run(ctx, tick)
	}
	return o, nil
}

// gopcuaLogger adapts slog to the server's printf-style logger, at Debug.
type gopcuaLogger struct{ l *slog.Logger }

func (g gopcuaLogger) Debug(msg string, args ...any) { g.l.Debug(fmt.Sprintf(msg, args...)) }
func (g gopcuaLogger) Info(msg string, args ...any)  { g.l.Debug(fmt.Sprintf(msg, args...)) }
func (g gopcuaLogger) Warn(msg string, args ...any)  { g.l.Debug(fmt.Sprintf(msg, args...)) }
func (g gopcuaLogger) Error(msg string, args ...any) { g.l.Debug(fmt.Sprintf(msg, args...)) }

func (o *OPCUAServer) run(ctx context.Context, tick time.Duration) {
	defer o.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.seq.Add(1)
			o.Notify()
		}
	}
}

// Notify pushes the current value of every node, and the server clock, to subscribers.
func (o *OPCUAServer) Notify() {
	for _, n := range o.nodes {
		o.srv.ChangeNotification(n.ID())
	}
	for _, n := range o.vars {
		o.srv.ChangeNotification(n.ID())
	}
	o.srv.ChangeNotification(o.clock)
}

// SetStatus makes every kiln node report code (with value 0, as servers do for Bad);
// ua.StatusOK restores the values.
func (o *OPCUAServer) SetStatus(code ua.StatusCode) { o.status.Store(uint32(code)) }

func (o *OPCUAServer) dataValue(v any, at time.Time) *ua.DataValue {
	if st := ua.StatusCode(o.status.Load()); st != ua.StatusOK {
		v = 0.0 // what servers send with a Bad status
		dv := server.DataValueFromValue(v)
		dv.SourceTimestamp, dv.ServerTimestamp, dv.Status = at, time.Now(), st
		dv.UpdateMask()
		return dv
	}
	dv := server.DataValueFromValue(v)
	dv.SourceTimestamp, dv.ServerTimestamp = at, time.Now()
	dv.UpdateMask() // DataValueFromValue sets no timestamp bits (LIBRARIES.md §1)
	return dv
}

func (o *OPCUAServer) valueFunc(p OPCUAPoint, valueAt func(string, time.Time) (reading.Value, bool)) func() *ua.DataValue {
	return func() *ua.DataValue {
		at := o.now()
		v, _ := valueAt(p.ID, at)
		switch p.DataType {
		case "Float":
			return o.dataValue(float32(v.Float64()), at)
		case "UInt32":
			return o.dataValue(uint32(v.Mantissa*pow10(v.Exp)), at)
		case "Boolean":
			return o.dataValue(v.Mantissa != 0, at)
		}
		return o.dataValue(v.Float64(), at)
	}
}

func (o *OPCUAServer) varFunc(i int) func() *ua.DataValue {
	return func() *ua.DataValue {
		return o.dataValue(float64(o.seq.Load())+float64(i)/1000, o.now())
	}
}

func pow10(e int32) int64 {
	p := int64(1)
	for range e {
		p *= 10
	}
	return p
}

// ValueAt returns the exact value a client reads from point id at t (see OPCUAPoints).
func (o *OPCUAServer) ValueAt(id string, t time.Time) (reading.Value, bool) {
	v, ok := o.kiln.ValueAt(id, t)
	if !ok {
		return v, false
	}
	for _, p := range OPCUAPoints() {
		if p.ID == id && p.DataType == "Float" {
			return reading.FromFloat32(float32(v.Float64()))
		}
		if p.ID == id && p.DataType == "Double" {
			return reading.FromFloat64(v.Float64())
		}
	}
	return v, true
}

// PotLineValueAt returns the exact value a client reads from pot line point id at t.
func (o *OPCUAServer) PotLineValueAt(id string, t time.Time) (reading.Value, bool) {
	v, ok := o.pot.ValueAt(id, t)
	if !ok {
		return v, false
	}
	for _, p := range PotLineOPCUAPoints() {
		if p.ID == id && p.DataType == "Float" {
			return reading.FromFloat32(float32(v.Float64()))
		}
		if p.ID == id && p.DataType == "Double" {
			return reading.FromFloat64(v.Float64())
		}
	}
	return v, true
}

// Port is the server's TCP port.
func (o *OPCUAServer) Port() int { return o.port }

// Addr is host:port of the server.
func (o *OPCUAServer) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)) }

// Endpoint is the server's opc.tcp URL.
func (o *OPCUAServer) Endpoint() string { return "opc.tcp://" + o.Addr() }

// EndpointVia is the opc.tcp URL of the server reached through addr (a Relay).
func EndpointVia(addr string) string { return "opc.tcp://" + addr }

// Close stops the ticker and the server. gopcua's Close waits up to 10 s for its secure
// channels and leaves accepted client connections open (LIBRARIES.md §1): close clients
// first, or cut them with a Relay.
func (o *OPCUAServer) Close() error {
	var err error
	o.once.Do(func() {
		o.cancel()
		o.wg.Wait()
		err = o.srv.Close()
	})
	return err
}
