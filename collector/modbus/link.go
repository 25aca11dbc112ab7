package modbus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	gb "github.com/goburrow/modbus"

	"github.com/mrv-agent/mrv-agent/config"
)

// link is one connection to Modbus devices: a TCP connection, an RTU-over-TCP connection to
// a serial gateway, or a share of an RS-485 bus. The Source serialises calls to read.
type link interface {
	// read performs one request within timeout (and ctx, for waiting on a shared bus).
	// An error that is not a *gb.ModbusError leaves the link closed: the next read re-dials.
	read(ctx context.Context, fn, unitID uint8, addr, qty uint16, timeout time.Duration) ([]byte, error)
	// close drops the connection; the next read re-dials.
	close() error
}

// Transport names a link's kind, as in the URL scheme.
const (
	TransportTCP        = "tcp"
	TransportRTU        = "rtu"
	TransportRTUOverTCP = "rtuovertcp"
)

// endpoint is where a link connects, parsed from modbus.url and the serial settings.
type endpoint struct {
	transport string
	addr      string // host:port, or the serial device path
	line      serialLine
}

// parseEndpoint checks modbus.url and, for rtu://, the serial line settings.
func parseEndpoint(m *config.ModbusIO) (endpoint, error) {
	raw := m.URL
	u, err := url.Parse(raw)
	if err != nil {
		return endpoint{}, err
	}
	switch u.Scheme {
	case TransportTCP, TransportRTUOverTCP:
		if u.Hostname() == "" {
			return endpoint{}, fmt.Errorf("%q: no host", raw)
		}
		port := u.Port()
		if port == "" {
			port = defaultPort
		}
		return endpoint{transport: u.Scheme, addr: net.JoinHostPort(u.Hostname(), port)}, nil
	case TransportRTU:
		if u.Host != "" || u.Path == "" {
			return endpoint{}, fmt.Errorf("%q: want rtu:///dev/ttyX (a device path, no host)", raw)
		}
		line := serialLine{baud: m.Baud, parity: m.Parity, stopBits: m.StopBits}
		if line.baud == 0 {
			line.baud = 19200
		}
		if line.parity == "" {
			line.parity = "E"
		}
		if line.stopBits == 0 {
			line.stopBits = 1
		}
		if err := line.check(); err != nil {
			return endpoint{}, err
		}
		return endpoint{transport: u.Scheme, addr: u.Path, line: line}, nil
	}
	return endpoint{}, fmt.Errorf("%q: want tcp://host:port, rtu:///dev/ttyX or rtuovertcp://host:port", raw)
}

// newLink returns the link for ep. It does no I/O.
func newLink(ep endpoint) link {
	switch ep.transport {
	case TransportRTU:
		return newRTULink(&serialDialer{bus: serialBus(ep.addr), line: ep.line})
	case TransportRTUOverTCP:
		return newRTULink(&tcpDialer{addr: ep.addr})
	}
	return newTCPLink(ep.addr)
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
// Any error that is not an exception closes the handler, since goburrow/modbus would
// otherwise stay broken or one reply behind (LIBRARIES.md §2).
func (l *tcpLink) read(_ context.Context, fn, unitID uint8, addr, qty uint16, timeout time.Duration) ([]byte, error) {
	l.h.SlaveId = unitID
	l.h.Timeout = timeout
	data, err := readFn(l.c, fn, addr, qty)
	if err != nil && !isException(err) {
		_ = l.h.Close()
	}
	return data, err
}

func (l *tcpLink) close() error { return l.h.Close() }

// readFn issues one read function through a goburrow client.
func readFn(c gb.Client, fn uint8, addr, qty uint16) ([]byte, error) {
	switch fn {
	case FuncReadCoils:
		return c.ReadCoils(addr, qty)
	case FuncReadDiscreteInputs:
		return c.ReadDiscreteInputs(addr, qty)
	case FuncReadHoldingRegisters:
		return c.ReadHoldingRegisters(addr, qty)
	case FuncReadInputRegisters:
		return c.ReadInputRegisters(addr, qty)
	}
	return nil, fmt.Errorf("unsupported function %d", fn)
}

func isException(err error) bool {
	var mbErr *gb.ModbusError
	return errors.As(err, &mbErr)
}
