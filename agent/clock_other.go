//go:build !linux

package agent

import "github.com/mrv-agent/mrv-agent/reading"

// ClockState is unknown where the kernel's synchronisation state cannot be read.
func ClockState() uint8 { return reading.ClockUnknown }
