package modbus

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var baudFlags = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600, 19200: unix.B19200,
	38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400,
	460800: unix.B460800, 921600: unix.B921600,
}

// ttyFile is a serial port opened non-blocking, so that os.File deadlines work through the
// runtime poller (goburrow/serial's own select loop has a fixed per-read timeout instead).
type ttyFile struct{ *os.File }

// openSerial opens a tty in raw mode (8 data bits, no echo, no line editing, no CR/NL
// translation) with the line's baud rate, parity and stop bits.
func openSerial(path string, line serialLine) (serialPort, error) {
	speed, ok := baudFlags[line.baud]
	if !ok {
		return nil, fmt.Errorf("open %s: baud %d is not supported", path, line.baud)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	t := unix.Termios{
		Cflag:  speed | unix.CS8 | unix.CREAD | unix.CLOCAL,
		Ispeed: speed,
		Ospeed: speed,
	}
	switch line.parity {
	case "E":
		t.Cflag |= unix.PARENB
		t.Iflag |= unix.INPCK
	case "O":
		t.Cflag |= unix.PARENB | unix.PARODD
		t.Iflag |= unix.INPCK
	}
	if line.stopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("configure %s: %w", path, err)
	}
	return ttyFile{os.NewFile(uintptr(fd), path)}, nil
}

func (f ttyFile) flushInput() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCIFLUSH) }); err != nil {
		return err
	}
	return ioErr
}
