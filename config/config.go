package config

import (
	"fmt"
	"time"
)

// Defaults that are not plain literals in Default. example.yaml documents every default.
const (
	DefaultKeyFile    = "/var/lib/mrv-agent/gateway.key"
	DefaultBufferPath = "/var/lib/mrv-agent/buffer.db"
	DefaultListen     = "127.0.0.1:9464"
	// MaxDefaultTimeout caps the default source timeout (interval/2).
	MaxDefaultTimeout = 5 * time.Second
)

// Config is the whole file. See example.yaml for every key, its meaning and its default.
type Config struct {
	Gateway   Gateway    `yaml:"gateway"`
	KeyFile   string     `yaml:"key_file"`
	Buffer    Buffer     `yaml:"buffer"`
	Blocks    Blocks     `yaml:"blocks"`
	MQTT      MQTT       `yaml:"mqtt"`
	Sources   []Source   `yaml:"sources"`
	Factors   []Factor   `yaml:"factors"`   // see emissions.go
	Emissions []Emission `yaml:"emissions"` // see emissions.go
	Status    Status     `yaml:"status"`
	Log       Log        `yaml:"log"`

	// Hash is the SHA-256 of the file's bytes, set by Parse (and Load); the agent seals it
	// in a config record.
	Hash [32]byte `yaml:"-"`
}

// Gateway identifies this gateway: origins are {site}/{id}/{stream}.
type Gateway struct {
	Site     string `yaml:"site"`
	ID       string `yaml:"id"`
	Timezone string `yaml:"timezone"` // IANA name; default "UTC"
}

// Location loads the gateway's time zone (the tz database is embedded, see doc.go).
func (g Gateway) Location() (*time.Location, error) { return time.LoadLocation(g.Timezone) }

// Buffer configures the bbolt store.
type Buffer struct {
	Path     string   `yaml:"path"`
	MaxBytes ByteSize `yaml:"max_bytes"`
	Retain   Duration `yaml:"retain"`
}

// Blocks configures how records are grouped into signed blocks.
type Blocks struct {
	MaxRecords int      `yaml:"max_records"`
	MaxAge     Duration `yaml:"max_age"`
	Heartbeat  Duration `yaml:"heartbeat"`
}

// MQTT configures the uplink.
type MQTT struct {
	URL                string `yaml:"url"`       // mqtt|tcp://host:port, mqtts|ssl|tls://host:port
	ClientID           string `yaml:"client_id"` // default "mrv-{site}-{gateway}"
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	Username           string `yaml:"username"`
	PasswordFile       string `yaml:"password_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	Inflight           int    `yaml:"inflight"`
	DrainRate          int    `yaml:"drain_rate"` // blocks per second while a backlog drains; 0 = no limit
}

// Password reads PasswordFile (see Secret); it is empty when no file is configured.
func (m MQTT) Password() (Secret, error) { return readSecret(m.PasswordFile) }

// Source is one connection to one device or server, and one stream.
type Source struct {
	Name     string    `yaml:"name"`
	Kind     string    `yaml:"kind"` // modbus | opcua
	Interval Duration  `yaml:"interval"`
	Timeout  Duration  `yaml:"timeout"` // 0 = interval/2, at most 5s
	Modbus   *ModbusIO `yaml:"modbus"`
	OPCUA    *OPCUA    `yaml:"opcua"` // see opcua.go
	Tags     []Tag     `yaml:"tags"`
}

// ModbusIO is the connection of a Modbus source.
type ModbusIO struct {
	URL      string `yaml:"url"`       // tcp://host:port | rtu:///dev/ttyX | rtuovertcp://host:port
	Baud     int    `yaml:"baud"`      // rtu; default 19200
	Parity   string `yaml:"parity"`    // rtu: N | E | O; default E
	StopBits int    `yaml:"stop_bits"` // rtu: 1 | 2; default 1
	MaxGap   *int   `yaml:"max_gap"`   // unused registers a request may read to join two tags; nil = 8
}

// Tag is one measured point of a source.
type Tag struct {
	ID       string   `yaml:"id"`
	Unit     string   `yaml:"unit"`
	Kind     string   `yaml:"kind"` // rate | counter | state; default rate
	Rollover *Decimal `yaml:"rollover"`
	Width    int      `yaml:"width"` // 16 | 32 | 64: shorthand for rollover 2^width
	MaxRate  *Decimal `yaml:"max_rate"`
	Min      *Decimal `yaml:"min"`
	Max      *Decimal `yaml:"max"`

	// Modbus
	UnitID   int      `yaml:"unit_id"`  // default 1
	Register string   `yaml:"register"` // holding | input | coil | discrete; default holding
	Address  int      `yaml:"address"`  // 0-based protocol address
	Type     string   `yaml:"type"`     // see RegisterCount; default uint16
	Order    string   `yaml:"order"`    // ABCD | CDAB | BADC | DCBA; default ABCD
	Bit      *int     `yaml:"bit"`      // type bool on a holding/input register: bit 0..15 (0 = least significant)
	Scale    *Decimal `yaml:"scale"`
	Offset   *Decimal `yaml:"offset"`

	// OPC UA (see opcua.go)
	Node             string    `yaml:"node"`              // node id: "ns=2;s=Kiln.FuelFlow", "nsu=urn:x;i=1001"
	Timestamp        string    `yaml:"timestamp"`         // source | server; default source
	SamplingInterval Duration  `yaml:"sampling_interval"` // default (0) the publishing interval
	Deadband         *Deadband `yaml:"deadband"`
}

// Status configures the local status server.
type Status struct {
	Listen       string `yaml:"listen"`
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// Password reads PasswordFile (see Secret); it is empty when no file is configured.
func (s Status) Password() (Secret, error) { return readSecret(s.PasswordFile) }

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json | auto
}

// Default returns a Config holding the defaults of the top-level sections. Parse decodes
// the file over it, then fills the defaults of each source, tag and modbus block and those
// that depend on other keys (the MQTT client id, source timeouts).
func Default() *Config {
	return &Config{
		Gateway: Gateway{Timezone: "UTC"},
		KeyFile: DefaultKeyFile,
		Buffer:  Buffer{Path: DefaultBufferPath, MaxBytes: GiB, Retain: Duration(168 * time.Hour)},
		Blocks:  Blocks{MaxRecords: 500, MaxAge: Duration(time.Second), Heartbeat: Duration(30 * time.Second)},
		MQTT:    MQTT{Inflight: 32},
		Status:  Status{Listen: DefaultListen},
		Log:     Log{Level: "info", Format: "auto"},
	}
}

// fill sets the defaults of list elements, after decoding. in reports whether a key is
// in the file, so that an explicit zero (unit_id: 0) is kept. Defaults are not set before
// decoding through an UnmarshalYAML of the element types because yaml/v3 drops a list
// element whose UnmarshalYAML fails, and then later elements would be validated, and
// reported, under the wrong index.
func (c *Config) fill(in func(path string) bool) {
	if c.MQTT.ClientID == "" {
		c.MQTT.ClientID = "mrv-" + c.Gateway.Site + "-" + c.Gateway.ID
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d].", i)
		setDefault(in, p+"interval", &s.Interval, Duration(time.Second))
		if s.Timeout == 0 {
			s.Timeout = min(s.Interval/2, Duration(MaxDefaultTimeout))
		}
		fillOPCUA(in, p, s, c.KeyFile)
		if m := s.Modbus; m != nil {
			setDefault(in, p+"modbus.baud", &m.Baud, 19200)
			setDefault(in, p+"modbus.parity", &m.Parity, "E")
			setDefault(in, p+"modbus.stop_bits", &m.StopBits, 1)
		}
		for j := range s.Tags {
			t := &s.Tags[j]
			tp := fmt.Sprintf("%stags[%d].", p, j)
			setDefault(in, tp+"kind", &t.Kind, "rate")
			if s.Kind == "modbus" {
				setDefault(in, tp+"unit_id", &t.UnitID, 1)
				setDefault(in, tp+"register", &t.Register, "holding")
				setDefault(in, tp+"type", &t.Type, "uint16")
				setDefault(in, tp+"order", &t.Order, "ABCD")
			}
		}
	}
	c.fillEmissions(in) // emissions.go
}

func setDefault[T any](in func(string) bool, path string, field *T, v T) {
	if !in(path) {
		*field = v
	}
}
