package reading

import "time"

// TimeSource says where a reading's timestamp came from.
type TimeSource uint8

// Time sources, with their wire codes.
const (
	TimeDevice  TimeSource = 0 // the meter's own timestamp (OPC UA SourceTimestamp)
	TimeServer  TimeSource = 1 // the server's timestamp (OPC UA ServerTimestamp)
	TimeGateway TimeSource = 2 // the gateway's clock at the poll (Modbus)
)

func (t TimeSource) String() string {
	switch t {
	case TimeDevice:
		return "device"
	case TimeServer:
		return "server"
	case TimeGateway:
		return "gateway"
	}
	return "invalid"
}

// Reading is one value of one tag at one instant.
type Reading struct {
	Tag        string // "<source>.<tag id>"
	Value      Value
	HasValue   bool // false when the source gave no usable number; Quality is then Bad
	Unit       Unit
	Time       int64 // Unix ns, UTC
	TimeSource TimeSource
	Quality    Quality
	Raw        []byte // the register words or the encoded variant as read; may be nil
}

// Timestamp returns Time as a time.Time in UTC.
func (r Reading) Timestamp() time.Time { return time.Unix(0, r.Time).UTC() }

// Record converts the reading to a record of kind reading.
func (r Reading) Record() Record {
	b := &ReadingBody{
		Tag:        r.Tag,
		Unit:       string(r.Unit),
		Quality:    uint8(r.Quality.Severity),
		Flags:      uint32(r.Quality.Flags),
		Status:     r.Quality.Status,
		TimeSource: uint8(r.TimeSource),
		Raw:        r.Raw,
	}
	if r.HasValue {
		v := r.Value
		b.Value = &v
	}
	return Record{Kind: KindReading, Time: r.Time, Body: b}
}

// Reading converts a record of kind reading back; ok is false for any other kind.
func (rec Record) Reading() (Reading, bool) {
	b, ok := rec.Body.(*ReadingBody)
	if !ok {
		return Reading{}, false
	}
	r := Reading{
		Tag:        b.Tag,
		Unit:       Unit(b.Unit),
		Time:       rec.Time,
		TimeSource: TimeSource(b.TimeSource),
		Quality:    Quality{Severity: Severity(b.Quality), Flags: Flag(b.Flags), Status: b.Status},
		Raw:        b.Raw,
	}
	if b.Value != nil {
		r.Value, r.HasValue = *b.Value, true
	}
	return r, true
}
