//go:build !linux

package modbus

import "fmt"

// openSerial is implemented for Linux only: gateways run Linux.
func openSerial(path string, _ serialLine) (serialPort, error) {
	return nil, fmt.Errorf("open %s: serial ports are supported on linux only", path)
}
