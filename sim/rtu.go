package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	smb "github.com/simonvetter/modbus"
)

// RTUUnits maps the unit ids (slave addresses) on a simulated serial line to the handlers
// that answer them. A request for a unit id without a handler gets no reply at all, as from
// a dead or absent device on an RS-485 bus.
type RTUUnits map[uint8]smb.RequestHandler

// Handler returns the kiln's request handler, to serve it over RTU (ServeRTU).
func (k *Kiln) Handler() smb.RequestHandler { return k.handler() }

// ServeRTU is a Modbus RTU slave (functions 1 to 4) on a byte stream: a pseudo-terminal
// in tests, or a connection of an RTU-over-TCP gateway. It models a real device: it handles
// one request at a time, and a request that arrives while it is still handling the previous
// one (a slow reply) is lost; a frame with a bad CRC is ignored. It returns when reading
// fails (the stream was closed), after the request in progress is answered.
func ServeRTU(rw io.ReadWriter, units RTUUnits) error {
	reqs := make(chan []byte)
	done := make(chan struct{})
	var busy atomic.Bool // set by the reader when it hands a request over, cleared once answered
	go func() {
		defer close(done)
		for f := range reqs {
			reply := answerRTU(f, units)
			busy.Store(false) // listening again while the reply goes out, as a UART does
			if reply != nil {
				if _, err := rw.Write(reply); err != nil {
					return
				}
			}
		}
	}()
	defer func() {
		close(reqs)
		<-done
	}()
	for {
		f := make([]byte, 8)
		if _, err := io.ReadFull(rw, f[:2]); err != nil {
			return err
		}
		if f[1] < 1 || f[1] > 4 {
			continue // not a read we serve; a real slave would wait for the line to go quiet
		}
		if _, err := io.ReadFull(rw, f[2:]); err != nil {
			return err
		}
		if crc16(f[:6]) != binary.LittleEndian.Uint16(f[6:]) {
			continue
		}
		if busy.Load() {
			continue // still handling the previous request: this one is lost
		}
		busy.Store(true)
		select {
		case reqs <- f:
		case <-done:
			return errors.New("rtu slave: write failed")
		}
	}
}

// answerRTU builds the reply frame to one request frame, or nil for a unit without handler.
func answerRTU(f []byte, units RTUUnits) []byte {
	unit, fn := f[0], f[1]
	h, ok := units[unit]
	if !ok {
		return nil
	}
	addr, qty := binary.BigEndian.Uint16(f[2:]), binary.BigEndian.Uint16(f[4:])
	var (
		words []uint16
		bits  []bool
		err   error
	)
	switch fn {
	case 1:
		bits, err = h.HandleCoils(&smb.CoilsRequest{UnitId: unit, Addr: addr, Quantity: qty})
	case 2:
		bits, err = h.HandleDiscreteInputs(&smb.DiscreteInputsRequest{UnitId: unit, Addr: addr, Quantity: qty})
	case 3:
		words, err = h.HandleHoldingRegisters(&smb.HoldingRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty})
	case 4:
		words, err = h.HandleInputRegisters(&smb.InputRegistersRequest{UnitId: unit, Addr: addr, Quantity: qty})
	}
	out := []byte{unit, fn}
	switch {
	case err != nil:
		out = append(out[:1], fn|0x80, exceptionCode(err))
	case fn <= 2:
		n := (len(bits) + 7) / 8
		out = append(out, byte(n))
		packed := make([]byte, n)
		for i, b := range bits {
			if b {
				packed[i/8] |= 1 << (i % 8)
			}
		}
		out = append(out, packed...)
	default:
		out = append(out, byte(2*len(words)))
		for _, w := range words {
			out = binary.BigEndian.AppendUint16(out, w)
		}
	}
	return binary.LittleEndian.AppendUint16(out, crc16(out))
}

func exceptionCode(err error) byte {
	for code, e := range map[byte]error{
		1: smb.ErrIllegalFunction, 2: smb.ErrIllegalDataAddress, 3: smb.ErrIllegalDataValue,
		5: smb.ErrAcknowledge, 6: smb.ErrServerDeviceBusy, 8: smb.ErrMemoryParityError,
		10: smb.ErrGWPathUnavailable, 11: smb.ErrGWTargetFailedToRespond,
	} {
		if errors.Is(err, e) {
			return code
		}
	}
	return 4 // server device failure
}

// crc16 is the Modbus CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF), sent low byte first.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// RTUServer is an RTU-over-TCP slave on loopback, as a serial gateway in transparent mode
// looks to the agent: each connection carries bare RTU frames (no MBAP header).
type RTUServer struct {
	ln    net.Listener
	units RTUUnits

	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup
}

// StartRTUOverTCP listens on addr ("127.0.0.1:0" picks a port) and serves units on every
// connection it accepts.
func StartRTUOverTCP(addr string, units RTUUnits) (*RTUServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rtu over tcp listen %s: %w", addr, err)
	}
	s := &RTUServer{ln: ln, units: units, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the server's host:port.
func (s *RTUServer) Addr() string { return s.ln.Addr().String() }

// URL is the server's address as a config modbus.url ("rtuovertcp://host:port").
func (s *RTUServer) URL() string { return "rtuovertcp://" + s.Addr() }

// Close stops listening, closes every connection and waits for their goroutines. Release
// slow handlers first (Kiln.Close), or Close waits for them.
func (s *RTUServer) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

func (s *RTUServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = ServeRTU(c, s.units)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = c.Close()
		}()
	}
}
