package agent

import (
	"golang.org/x/sys/unix"

	"github.com/mrv-agent/mrv-agent/reading"
)

// ClockState reports whether the kernel considers the system clock synchronised (adjtimex:
// TIME_ERROR means unsynchronised, as ntpd, chrony and systemd-timesyncd leave it).
func ClockState() uint8 {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	switch {
	case err != nil:
		return reading.ClockUnknown
	case state == unix.TIME_ERROR:
		return reading.ClockUnsynced
	default:
		return reading.ClockSynchronised
	}
}
