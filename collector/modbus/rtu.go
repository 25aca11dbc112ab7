package modbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	gb "github.com/goburrow/modbus"
)

// rtuConn is a byte stream with deadlines: a TCP connection to a serial gateway, or a
// serial port opened non-blocking (so the runtime poller enforces its deadlines).
type rtuConn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
}

// dialer opens and guards the medium of an RTU link.
type dialer interface {
	// acquire waits (within ctx) for the medium, which a shared RS-485 bus may be busy
	// with, and returns the open connection, dialling or opening it if needed within timeout.
	acquire(ctx context.Context, timeout time.Duration) (rtuConn, error)
	// release hands the medium back; broken closes the connection first.
	release(broken bool)
	// close closes the connection; the next acquire opens it again.
	close() error
}

// rtuLink speaks Modbus RTU framing over a dialer's connection: goburrow's RTU packager
// (address, PDU, CRC-16) with our own transporter. goburrow's serial transporter is not used:
// it decides from the request whether a reply is an exception (LIBRARIES.md §2), so a 5-byte
// exception reply surfaces as a timeout; ours frames each reply by its own function byte.
type rtuLink struct {
	d  dialer
	pk *gb.RTUClientHandler // only its packager half (Encode, Verify, Decode) is used
	tr rtuTransporter
	c  gb.Client
}

func newRTULink(d dialer) *rtuLink {
	l := &rtuLink{d: d, pk: gb.NewRTUClientHandler("")}
	l.c = gb.NewClient2(l.pk, &l.tr)
	return l
}

// read waits for the medium, then performs one request within timeout, measured from when
// the medium is ours (and never past ctx's deadline).
func (l *rtuLink) read(ctx context.Context, fn, unitID uint8, addr, qty uint16, timeout time.Duration) ([]byte, error) {
	conn, err := l.d.acquire(ctx, timeout)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	l.pk.SlaveId = unitID
	l.tr.conn, l.tr.deadline = conn, deadline
	data, err := readFn(l.c, fn, addr, qty)
	l.tr.conn = nil
	l.d.release(err != nil && !isException(err))
	return data, err
}

func (l *rtuLink) close() error { return l.d.close() }

// rtuTransporter implements gb.Transporter for one request at a time; rtuLink.read sets
// conn and deadline around each call.
type rtuTransporter struct {
	conn     rtuConn
	deadline time.Time
}

// Send writes one RTU request frame and reads the reply frame.
func (t *rtuTransporter) Send(adu []byte) ([]byte, error) {
	if t.conn == nil || len(adu) < 2 {
		return nil, errors.New("rtu: not connected")
	}
	if err := t.conn.SetDeadline(t.deadline); err != nil {
		return nil, fmt.Errorf("rtu deadline: %w", err)
	}
	if _, err := t.conn.Write(adu); err != nil {
		return nil, fmt.Errorf("rtu write: %w", err)
	}
	return readRTUReply(t.conn, adu[1])
}

// maxRTUFrame is the largest RTU frame: address, function, byte count, 252 data bytes... in
// practice 256 (Modbus over serial line v1.02 §2.5.1), with a byte count of at most 250.
const maxRTUFrame = 256

// readRTUReply reads one reply to a request of function fn, framed by its own bytes:
// address, function, then for an exception (function | 0x80) the exception code, for a read
// (functions 1 to 4) a byte count and that many data bytes; the CRC-16 last. The caller
// checks the address and the CRC (goburrow's packager). It never reads past the frame, so
// the next reply starts clean.
func readRTUReply(r io.Reader, fn byte) ([]byte, error) {
	buf := make([]byte, 3, maxRTUFrame)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("rtu read: %w", err)
	}
	var rest int
	switch {
	case buf[1] == fn|0x80:
		rest = 2 // exception code already read; CRC
	case buf[1] != fn:
		return nil, fmt.Errorf("rtu reply has function %#02x, want %#02x", buf[1], fn)
	case fn >= FuncReadCoils && fn <= FuncReadInputRegisters:
		rest = int(buf[2]) + 2
		if 3+rest > maxRTUFrame {
			return nil, fmt.Errorf("rtu reply byte count %d is too large", buf[2])
		}
	default:
		return nil, fmt.Errorf("rtu: function %#02x is not supported", fn)
	}
	buf = buf[:3+rest]
	if _, err := io.ReadFull(r, buf[3:]); err != nil {
		return nil, fmt.Errorf("rtu read: %w", err)
	}
	return buf, nil
}

// tcpDialer is the connection of RTU over TCP (a serial gateway in transparent mode). It is
// owned by one Source, whose lock serialises its use.
type tcpDialer struct {
	addr string
	conn net.Conn
}

func (d *tcpDialer) acquire(ctx context.Context, timeout time.Duration) (rtuConn, error) {
	if d.conn == nil {
		nd := net.Dialer{Timeout: timeout}
		c, err := nd.DialContext(ctx, "tcp", d.addr)
		if err != nil {
			return nil, err
		}
		d.conn = c
	}
	return d.conn, nil
}

// release closes a broken connection: after a timeout the late reply would otherwise be
// read as the answer to the next request (RTU frames carry no transaction id).
func (d *tcpDialer) release(broken bool) {
	if broken {
		_ = d.close()
	}
}

func (d *tcpDialer) close() error {
	if d.conn == nil {
		return nil
	}
	err := d.conn.Close()
	d.conn = nil
	return err
}
