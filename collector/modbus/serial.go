package modbus

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// serialLine is the character format of an RS-485/RS-232 line.
type serialLine struct {
	baud     int
	parity   string // N, E or O
	stopBits int    // 1 or 2
}

func (l serialLine) String() string { return fmt.Sprintf("%d 8%s%d", l.baud, l.parity, l.stopBits) }

// check refuses settings the serial driver cannot apply.
func (l serialLine) check() error {
	if !slices.Contains(standardBauds, l.baud) {
		return fmt.Errorf("baud %d is not a standard rate (%v)", l.baud, standardBauds)
	}
	if l.parity != "N" && l.parity != "E" && l.parity != "O" {
		return fmt.Errorf("parity %q is not N, E or O", l.parity)
	}
	if l.stopBits != 1 && l.stopBits != 2 {
		return fmt.Errorf("stop_bits %d is not 1 or 2", l.stopBits)
	}
	return nil
}

// standardBauds are the rates a serial port can be set to.
var standardBauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

// bus is one serial port, shared by every Source whose url names its device: RS-485 is
// half-duplex, so one request is on the wire at a time, whichever source (and unit) it is
// for. goburrow's RTU handler takes no lock at all (LIBRARIES.md §2); this is that lock.
type bus struct {
	path string
	// sem holds the bus: one request at a time. It guards the fields below.
	sem  chan struct{}
	port serialPort
	line serialLine // of the open port
}

// serialPort is an open serial port.
type serialPort interface {
	rtuConn
	// flushInput drops bytes received and not read: a late reply from a unit that timed
	// out must not be read as the next unit's reply.
	flushInput() error
}

// buses is the process-wide registry of serial ports, keyed by device path. Entries are
// never removed: a gateway has a handful of ports.
var buses = struct {
	sync.Mutex
	m map[string]*bus
}{m: map[string]*bus{}}

// serialBus returns the bus of a device path, creating it on first use.
func serialBus(path string) *bus {
	buses.Lock()
	defer buses.Unlock()
	b, ok := buses.m[path]
	if !ok {
		b = &bus{path: path, sem: make(chan struct{}, 1)}
		buses.m[path] = b
	}
	return b
}

// serialDialer is one Source's use of a bus, with its line settings.
type serialDialer struct {
	bus  *bus
	line serialLine
}

func (d *serialDialer) acquire(ctx context.Context, _ time.Duration) (rtuConn, error) {
	select {
	case d.bus.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for serial bus %s: %w", d.bus.path, ctx.Err())
	}
	b := d.bus
	if b.port != nil && b.line != d.line {
		<-b.sem
		return nil, fmt.Errorf("serial %s is open at %s by another source, not %s", b.path, b.line, d.line)
	}
	if b.port == nil {
		p, err := openSerial(b.path, d.line)
		if err != nil {
			<-b.sem
			return nil, err
		}
		b.port, b.line = p, d.line
	}
	if err := b.port.flushInput(); err != nil {
		_ = b.port.Close()
		b.port = nil
		<-b.sem
		return nil, fmt.Errorf("flush %s: %w", b.path, err)
	}
	return b.port, nil
}

// release closes the port after a transport error: reopening also resets the driver
// state after, say, a USB adapter was unplugged and plugged again.
func (d *serialDialer) release(broken bool) {
	if broken {
		_ = d.bus.port.Close()
		d.bus.port = nil
	}
	<-d.bus.sem
}

// close closes the bus's port (after any request in progress, which is bounded by its
// timeout); the next request of any source sharing the bus opens it again.
func (d *serialDialer) close() error {
	d.bus.sem <- struct{}{}
	defer func() { <-d.bus.sem }()
	if d.bus.port == nil {
		return nil
	}
	err := d.bus.port.Close()
	d.bus.port = nil
	return err
}
