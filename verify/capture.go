package verify

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// A capture file is a CBOR sequence (RFC 8742) of records
// {0: recv_time (int64 Unix ns), 1: topic (text), 2: envelope (bstr)}, each in deterministic
// encoding. Bounds on what ReadCapture accepts:
const (
	MaxCaptureTopic    = 65535                 // bytes of a topic (the MQTT limit)
	MaxCaptureEnvelope = seal.MaxEnvelopeBytes // bytes of an envelope
)

type captureRecord struct {
	Recv     int64  `cbor:"0,keyasint"`
	Topic    string `cbor:"1,keyasint"`
	Envelope []byte `cbor:"2,keyasint"`
}

// CaptureWriter appends records to a capture file. It is not safe for concurrent use and
// does not buffer: give it a *bufio.Writer (and flush it) for speed.
type CaptureWriter struct {
	w io.Writer
}

// NewCaptureWriter returns a CaptureWriter writing to w.
func NewCaptureWriter(w io.Writer) *CaptureWriter { return &CaptureWriter{w: w} }

// Write appends one received message.
func (c *CaptureWriter) Write(recv time.Time, topic string, env []byte) error {
	if len(topic) > MaxCaptureTopic || len(env) > MaxCaptureEnvelope {
		return fmt.Errorf("capture write: topic of %d bytes or envelope of %d bytes is too large", len(topic), len(env))
	}
	if env == nil {
		env = []byte{}
	}
	data, err := reading.Marshal(captureRecord{Recv: recv.UnixNano(), Topic: topic, Envelope: env})
	if err != nil {
		return fmt.Errorf("capture write: %w", err)
	}
	if _, err := c.w.Write(data); err != nil {
		return fmt.Errorf("capture write: %w", err)
	}
	return nil
}

// ErrCaptureTruncated is returned when a capture file ends inside a record (for example
// after the recorder was killed); the records before it were delivered.
var ErrCaptureTruncated = errors.New("capture ends inside a record")

// ReadCapture reads a capture file record by record and calls fn for each, until the end
// of r (nil), an error of fn (returned as is), or a malformed record (an error naming its
// byte offset). Decoding is strict: each record must be exactly the deterministic encoding
// of {0: int, 1: text, 2: bstr}, within MaxCaptureTopic and MaxCaptureEnvelope. The env
// slice passed to fn is not reused.
func ReadCapture(r io.Reader, fn func(recv time.Time, topic string, env []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	for n := 0; ; n++ {
		if _, err := br.Peek(1); err == io.EOF {
			return nil
		}
		raw, err := readCaptureRecord(br)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("capture record %d at offset %d: %w", n, off, ErrCaptureTruncated)
			}
			return fmt.Errorf("capture record %d at offset %d: %w", n, off, err)
		}
		var rec captureRecord
		if err := reading.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("capture record %d at offset %d: %w", n, off, err)
		}
		off += int64(len(raw))
		if err := fn(time.Unix(0, rec.Recv), rec.Topic, rec.Envelope); err != nil {
			return err
		}
	}
}

// readCaptureRecord frames one record by its CBOR heads and returns its bytes, so that the
// strict decoder sees exactly one item and nothing is allocated beyond the bounds.
func readCaptureRecord(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	head := func(wantMajor byte) (uint64, error) {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		raw = append(raw, b)
		major, info := b>>5, b&0x1f
		if major != wantMajor && (wantMajor != 0 || major != 1) {
			return 0, fmt.Errorf("unexpected CBOR major type %d, want %d", major, wantMajor)
		}
		var n int
		switch {
		case info < 24:
			return uint64(info), nil
		case info == 24:
			n = 1
		case info == 25:
			n = 2
		case info == 26:
			n = 4
		case info == 27:
			n = 8
		default:
			return 0, fmt.Errorf("CBOR additional info %d not allowed", info)
		}
		var buf [8]byte
		if _, err := io.ReadFull(br, buf[8-n:]); err != nil {
			return 0, err
		}
		raw = append(raw, buf[8-n:]...)
		return binary.BigEndian.Uint64(buf[:]), nil
	}
	key := func(want uint64) error {
		k, err := head(0)
		if err != nil {
			return err
		}
		if raw[len(raw)-1]>>5 != 0 || k != want {
			return fmt.Errorf("record key %d, want %d", k, want)
		}
		return nil
	}
	str := func(major byte, max int) error {
		n, err := head(major)
		if err != nil {
			return err
		}
		if n > uint64(max) {
			return fmt.Errorf("string of %d bytes, more than %d", n, max)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		_, err = io.ReadFull(br, raw[start:])
		return err
	}
	if n, err := head(5); err != nil {
		return nil, err
	} else if n != 3 {
		return nil, fmt.Errorf("record is a map of %d pairs, want 3", n)
	}
	if err := key(0); err != nil {
		return nil, err
	}
	if _, err := head(0); err != nil { // int64, either sign
		return nil, err
	}
	if err := key(1); err != nil {
		return nil, err
	}
	if err := str(3, MaxCaptureTopic); err != nil {
		return nil, err
	}
	if err := key(2); err != nil {
		return nil, err
	}
	if err := str(2, MaxCaptureEnvelope); err != nil {
		return nil, err
	}
	return raw, nil
}
