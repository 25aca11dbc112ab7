package reading

import "strings"

// Severity is the Good/Uncertain/Bad of a reading (mrv-methods.md §5.1).
type Severity uint8

// Severities, with their wire codes.
const (
	Good      Severity = 0
	Uncertain Severity = 1
	Bad       Severity = 2
)

func (s Severity) String() string {
	switch s {
	case Good:
		return "good"
	case Uncertain:
		return "uncertain"
	case Bad:
		return "bad"
	}
	return "invalid"
}

// Flag is one bit of a reading's quality flags (mrv-methods.md §5.1). The bit positions
// are part of the record format and never change meaning; new flags take new bits.
type Flag uint32

// Quality flags. Each states why a reading is not a plain valid measurement.
const (
	FlagOutOfRange     Flag = 1 << 0  // outside the configured min/max, or the device's limit bits say saturated
	FlagManualOverride Flag = 1 << 1  // forced value, not a measurement
	FlagStale          Flag = 1 << 2  // last usable value repeated by the source
	FlagCommsLoss      Flag = 1 << 3  // no answer: timeout, connection lost, exception, CRC error
	FlagSubstituted    Flag = 1 << 4  // substituted by the source
	FlagCalibration    Flag = 1 << 5  // analyser in calibration or zero/span check
	FlagDeviceFault    Flag = 1 << 6  // device or sensor failure
	FlagMaintenance    Flag = 1 << 7  // out of service
	FlagFrozen         Flag = 1 << 8  // no change for longer than the freeze window
	FlagNoValue        Flag = 1 << 9  // the number read has no exact decimal form (NaN, Inf, overflow)
	FlagException      Flag = 1 << 10 // Modbus exception response; Status holds the exception code
	FlagTimeout        Flag = 1 << 11 // request timed out
	FlagClockBackwards Flag = 1 << 12 // the timestamp is earlier than the previous one of this tag
)

var flagNames = []struct {
	f    Flag
	name string
}{
	{FlagOutOfRange, "out-of-range"}, {FlagManualOverride, "manual-override"}, {FlagStale, "stale"},
	{FlagCommsLoss, "comms-loss"}, {FlagSubstituted, "substituted"}, {FlagCalibration, "calibration"},
	{FlagDeviceFault, "device-fault"}, {FlagMaintenance, "maintenance"}, {FlagFrozen, "frozen"},
	{FlagNoValue, "no-value"}, {FlagException, "exception"}, {FlagTimeout, "timeout"},
	{FlagClockBackwards, "clock-backwards"},
}

// String lists the set flags as kebab-case names joined by "|", or "" when none is set.
func (f Flag) String() string {
	var b strings.Builder
	for _, n := range flagNames {
		if f&n.f != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n.name)
		}
	}
	return b.String()
}

// Quality is a reading's severity, flags and the raw status the source reported (an OPC UA
// StatusCode or a Modbus exception code), kept so a verifier can audit the mapping.
type Quality struct {
	Severity Severity
	Flags    Flag
	Status   uint32
}
