package opcua

import (
	"github.com/gopcua/opcua/ua"

	"github.com/mrv-agent/mrv-agent/reading"
)

// OPC UA StatusCode layout (Part 4, 7.39): severity in bits 30-31, the sub-code in bits
// 16-27, and, when the InfoType (bits 10-11) is DataValue, the limit bits 8-9.
const (
	severityMask = 0xC0000000
	codeMask     = 0xFFFF0000 // severity and sub-code: what the named codes compare on
	infoTypeMask = 0x00000C00
	infoDataVal  = 0x00000400
	limitMask    = 0x00000300
	limitLow     = 0x00000100
	limitHigh    = 0x00000200
)

// statusFlags are the flags of the named codes of mrv-methods.md §5.1.
var statusFlags = map[ua.StatusCode]reading.Flag{
	ua.StatusGoodLocalOverride:                       reading.FlagManualOverride,
	ua.StatusUncertainLastUsableValue:                reading.FlagStale,
	ua.StatusUncertainNoCommunicationLastUsableValue: reading.FlagStale | reading.FlagCommsLoss,
	ua.StatusUncertainSubstituteValue:                reading.FlagSubstituted,
	ua.StatusUncertainSensorNotAccurate:              reading.FlagOutOfRange,
	ua.StatusUncertainEngineeringUnitsExceeded:       reading.FlagOutOfRange,
	ua.StatusUncertainSensorCalibration:              reading.FlagCalibration,
	ua.StatusUncertainTransducerInManual:             reading.FlagManualOverride,
	ua.StatusBadDeviceFailure:                        reading.FlagDeviceFault,
	ua.StatusBadSensorFailure:                        reading.FlagDeviceFault,
	ua.StatusBadOutOfService:                         reading.FlagMaintenance,
	ua.StatusBadNoCommunication:                      reading.FlagCommsLoss,
	ua.StatusBadWaitingForInitialData:                reading.FlagCommsLoss,
	ua.StatusBadNotConnected:                         reading.FlagCommsLoss,
	ua.StatusBadCommunicationError:                   reading.FlagCommsLoss,
	ua.StatusBadConnectionClosed:                     reading.FlagCommsLoss,
	ua.StatusBadServerNotConnected:                   reading.FlagCommsLoss,
	ua.StatusBadTimeout:                              reading.FlagCommsLoss | reading.FlagTimeout,
	ua.StatusBadRequestTimeout:                       reading.FlagCommsLoss | reading.FlagTimeout,
}

// Quality maps an OPC UA StatusCode to a reading's quality (mrv-methods.md §5.1): the
// severity from the top two bits, flags for the named codes, OUT_OF_RANGE for the limit
// bits Low and High (a Good value with them is treated as Bad: the sensor is saturated),
// and the raw code kept in Status so a verifier can audit the mapping. Any other Uncertain
// code is Uncertain without flags; the emissions engine treats Uncertain as invalid.
func Quality(code ua.StatusCode) reading.Quality {
	q := reading.Quality{Status: uint32(code)}
	switch uint32(code) & severityMask {
	case 0:
		q.Severity = reading.Good
	case 0x40000000:
		q.Severity = reading.Uncertain
	default: // 0x80000000 Bad, and 0xC0000000 (reserved, treated as Bad)
		q.Severity = reading.Bad
	}
	q.Flags = statusFlags[ua.StatusCode(uint32(code)&codeMask)]
	if uint32(code)&infoTypeMask == infoDataVal {
		switch uint32(code) & limitMask {
		case limitLow, limitHigh:
			q.Flags |= reading.FlagOutOfRange
			if q.Severity == reading.Good {
				q.Severity = reading.Bad
			}
		}
	}
	return q
}
