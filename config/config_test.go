package config

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/reading"
)

func dec(t *testing.T, s string) *Decimal {
	t.Helper()
	v, err := reading.ParseValue(s)
	require.NoError(t, err)
	return &Decimal{v}
}

func TestExample(t *testing.T) {
	c, err := Parse(Example, "example.yaml")
	require.NoError(t, err)
	require.Equal(t, "mrv-plant-a-kiln1-gw", c.MQTT.ClientID)
	require.Len(t, c.Sources, 1)
	s := c.Sources[0]
	require.Equal(t, 500*time.Millisecond, s.Timeout.D())
	require.Len(t, s.Tags, 9)
	byID := map[string]Tag{}
	for _, tag := range s.Tags {
		byID[tag.ID] = tag
	}
	require.Equal(t, "counter", byID["fuel_gas_total"].Kind)
	require.Equal(t, 32, byID["fuel_gas_total"].Width)
	require.Equal(t, "counter", byID["energy"].Kind)
	require.Equal(t, dec(t, "0.01"), byID["stack_co2"].Scale)
	require.Equal(t, 2, byID["power"].UnitID)
	loc, err := c.Gateway.Location()
	require.NoError(t, err)
	require.Equal(t, "Europe/Berlin", loc.String())
}

// TestExampleDocumentsEveryKey keeps example.yaml complete: every yaml key of the schema
// appears in it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	ex := string(Example)
	for _, key := range []string{
		"site", "id", "timezone", "key_file", "path", "max_bytes", "retain", "max_records", "max_age",
		"heartbeat", "url", "client_id", "ca_file", "cert_file", "username", "password_file",
		"insecure_skip_verify", "inflight", "drain_rate", "name", "kind", "interval", "timeout", "baud",
		"parity", "stop_bits", "unit", "rollover", "width", "max_rate", "min", "max", "unit_id",
		"register", "address", "type", "order", "scale", "offset", "listen", "level", "format",
	} {
		require.True(t, strings.Contains(ex, key+":") || strings.Contains(ex, "  "+key+" "), "example.yaml does not document %q", key)
	}
}

func TestDefaults(t *testing.T) {
	data := []byte(`
gateway: {site: plant-a, id: gw1}
mqtt: {url: "mqtt://broker:1883"}
sources:
  - name: kiln1
    kind: modbus
    modbus: {url: "tcp://192.0.2.10:502"}
    tags: [{id: power, unit: kW}]
`)
	got, err := Parse(data, "t.yaml")
	require.NoError(t, err)
	want := &Config{
		Gateway: Gateway{Site: "plant-a", ID: "gw1", Timezone: "UTC"},
		KeyFile: "/var/lib/mrv-agent/gateway.key",
		Buffer:  Buffer{Path: "/var/lib/mrv-agent/buffer.db", MaxBytes: 1 << 30, Retain: Duration(168 * time.Hour)},
		Blocks:  Blocks{MaxRecords: 500, MaxAge: Duration(time.Second), Heartbeat: Duration(30 * time.Second)},
		MQTT:    MQTT{URL: "mqtt://broker:1883", ClientID: "mrv-plant-a-gw1", Inflight: 32},
		Sources: []Source{{
			Name: "kiln1", Kind: "modbus",
			Interval: Duration(time.Second), Timeout: Duration(500 * time.Millisecond),
			Modbus: &ModbusIO{URL: "tcp://192.0.2.10:502", Baud: 19200, Parity: "E", StopBits: 1},
			Tags:   []Tag{{ID: "power", Unit: "kW", Kind: "rate", UnitID: 1, Register: "holding", Type: "uint16", Order: "ABCD"}},
		}},
		Status: Status{Listen: "127.0.0.1:9464"},
		Log:    Log{Level: "info", Format: "auto"},
		Hash:   sha256.Sum256(data),
	}
	require.Equal(t, want, got)
}

func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			require.NoError(t, err)
		})
	}

	c, err := Load("testdata/rtu.good.yaml")
	require.NoError(t, err)
	require.Equal(t, ByteSize(1_500_000_000), c.Buffer.MaxBytes)
	require.Equal(t, 250*time.Millisecond, c.Blocks.Heartbeat.D(), "an alias decodes like its anchor")
	r := c.Sources[0]
	require.Equal(t, &ModbusIO{URL: "rtu:///dev/ttyUSB0", Baud: 9600, Parity: "N", StopBits: 2}, r.Modbus)
	require.Equal(t, 5*time.Second, r.Timeout.D(), "default timeout is interval/2, at most 5s")
	require.Equal(t, 0, r.Tags[0].UnitID, "an explicit unit_id 0 is kept")
	require.Equal(t, dec(t, "-0.5"), r.Tags[0].Min)
	merged := r.Tags[2]
	require.Equal(t, "energy_check", merged.ID)
	require.Equal(t, "input", merged.Register, "a merged key is not overwritten by its default")
	require.Equal(t, "DCBA", merged.Order)
	require.Equal(t, 4, merged.Address)
	require.Equal(t, dec(t, "1000"), merged.MaxRate)
	require.Equal(t, &ModbusIO{URL: "rtuovertcp://10.0.0.7:4001", Baud: 19200, Parity: "E", StopBits: 1}, c.Sources[1].Modbus)
}

// expectedErrors lists, per file in testdata, a substring of each problem it must report,
// in line order; a file must report no other problem.
var expectedErrors = map[string][]string{
	"empty.bad.yaml":         {"empty.bad.yaml: empty config file"},
	"two_documents.bad.yaml": {"two_documents.bad.yaml:9: a second YAML document"},
	"syntax.bad.yaml":        {"syntax.bad.yaml:3: "},
	"duplicate_key.bad.yaml": {`duplicate_key.bad.yaml:3: mapping key "mqtt" already defined at line 2`},
	"unknown_key.bad.yaml": {
		"unknown_key.bad.yaml:10: sources[0].tags[0].adress: unknown key",
		"unknown_key.bad.yaml:11: stats: unknown key",
	},
	"gateway.bad.yaml": {
		`gateway.site: "Plant A" must match [a-z0-9][a-z0-9-]*`,
		"gateway.id: is required",
		`gateway.timezone: "Mars/Olympus" is not an IANA time zone`,
	},
	"buffer_blocks.bad.yaml": {
		"key_file: is required",
		"buffer.path: is required",
		"buffer.max_bytes: 1MB is less than the minimum 1MiB",
		"buffer.retain: 0s must be > 0",
		"blocks.max_records: 10001 is out of range 1..10000",
		"blocks.max_age: 1m is longer than blocks.heartbeat (30s)",
	},
	"mqtt_plain_tls_options.bad.yaml": {
		"mqtt.insecure_skip_verify: only applies to mqtts://",
		"mqtt.ca_file: only applies to mqtts://",
		"mqtt.password_file: needs mqtt.username",
		"mqtt.inflight: 0 is out of range 1..65535",
		"mqtt.drain_rate: -1 must not be negative",
	},
	"mqtt_url.bad.yaml": {
		`mqtt.url: "http://127.0.0.1:1883": scheme must be one of mqtt, mqtts, tcp, ssl, tls`,
		"mqtt.cert_file: cert_file and key_file must be given together",
	},
	"mqtt_credentials.bad.yaml": {
		`mqtt_credentials.bad.yaml:1: gateway.timezone: "Local" is not an IANA time zone`,
		"mqtt_credentials.bad.yaml:2: mqtt.url: must not hold credentials (mqtts://gw1@...): use username and password_file",
	},
	"mqtt_no_port.bad.yaml": {`mqtt.url: "mqtts://broker": want mqtts://host:port`},
	"status_log.bad.yaml": {
		`status.listen: "localhost" is not host:port`,
		"status.username: username and password_file must be given together",
		`log.level: "verbose" is not one of debug, info, warn, error`,
		`log.format: "xml" is not one of auto, text, json`,
	},
	"no_sources.bad.yaml": {"sources: at least one source is required"},
	"sources.bad.yaml": {
		`sources.bad.yaml:4: sources[0].name: "agent" is reserved`,
		`sources.bad.yaml:8: sources[1].opcua: is required for kind opcua`,
		`sources.bad.yaml:10: sources[1].tags[0].node: is required for kind opcua`,
		`sources.bad.yaml:11: sources[2].name: "kiln1" is already the name of sources[1]`,
		"sources[2].modbus: is required for kind modbus",
		"sources[2].timeout: 1s must be shorter than interval (1s)",
		"sources[2].tags: at least one tag is required",
		`sources[3].name: "Kiln_2" must match [a-z0-9][a-z0-9-]*`,
		"sources[3].kind: is required (supported: modbus, opcua)",
		"sources[3].interval: 0s must be > 0",
	},
	"opcua.bad.yaml": {
		`sources[0].opcua.endpoint: "tcp://192.0.2.20:4840": want opc.tcp://host:port`,
		"sources[0].opcua.security: is required (none, basic256sha256",
		`sources[0].opcua.auth: "password" is not one of anonymous, username, certificate`,
		`sources[0].opcua.collect: "push" is not one of subscribe, poll`,
		"sources[0].tags[0].node: is required for kind opcua",
		`sources[0].tags[0].timestamp: "device" is not one of source, server`,
		"sources[0].tags[0].address: only applies to kind modbus",
		`sources[0].tags[1].node: "ns=70000;i=1" has a namespace index outside 0..65535`,
		"sources[0].tags[1].deadband: give exactly one of absolute and percent",
		`sources[0].tags[2].node: "Kiln.FuelFlow" is not a node id`,
		"sources[0].tags[2].deadband.percent: 120 is out of range 0..100",
		"sources[1].opcua.mode: \"sign\" does not apply to security none",
		"sources[1].opcua.username: is required for auth username",
		"sources[1].opcua.auth: username needs a security policy other than none",
		`sources[2].opcua.mode: "encrypt" is not one of sign, signandencrypt`,
		"sources[2].opcua.publishing_interval: 5s is longer than the source interval (1s)",
		"sources[3].opcua: only applies to kind opcua",
		"sources[3].tags[0].node: only applies to kind opcua",
	},
	"modbus_url.bad.yaml": {
		`sources[0].modbus.url: "udp://192.0.2.10:502": want tcp://host:port`,
		`sources[1].modbus.url: "rtu://": want rtu:///dev/ttyX`,
		"sources[2].modbus.baud: 0 must be > 0",
		`sources[2].modbus.parity: "X" is not one of N, E, O`,
		"sources[2].modbus.stop_bits: 3 must be 1 or 2",
		"sources[2].modbus.max_gap: 126 is out of range 0..125",
		`sources[3].modbus.url: "tcp://192.0.2.10": want tcp://host:port`,
	},
	"tags.bad.yaml": {
		`tags.bad.yaml:8: sources[0].tags[0].id: "Power" must match [a-z0-9][a-z0-9_-]*`,
		`tags.bad.yaml:8: sources[0].tags[0].unit: "kwh" is not a known unit (known: kWh, MWh,`,
		`sources[0].tags[1].kind: "gauge" is not one of rate, counter, state`,
		`sources[0].tags[2].id: "flow" is already the id of sources[0].tags[1]`,
		"sources[0].tags[2].min: 10 must be less than max (10)",
		`sources[0].tags[3].id: "_x" must match`,
		"sources[0].tags[3].rollover: only applies to kind counter (kind is rate)",
		"sources[0].tags[3].width: only applies to kind counter",
		"sources[0].tags[3].max_rate: only applies to kind counter",
	},
	"counters.bad.yaml": {
		"sources[0].tags[0].max_rate: is required for a counter",
		"sources[0].tags[0].rollover: a counter needs rollover or width",
		"sources[0].tags[1].max_rate: 0 must be > 0",
		"sources[0].tags[1].rollover: give rollover or width, not both",
		"sources[0].tags[2].max_rate: -1 must be > 0",
		"sources[0].tags[2].width: 24 must be 16, 32 or 64",
		"sources[0].tags[3].rollover: 0 must be > 0",
	},
	"modbus_tags.bad.yaml": {
		"modbus_tags.bad.yaml:8: sources[0].tags[0].unit_id: 248 is out of range 0..247",
		"modbus_tags.bad.yaml:8: sources[0].tags[0].address: 70000 is out of range 0..65535",
		"sources[0].tags[1].address: 65535: float32 needs 2 registers, past the last address 65535",
		`sources[0].tags[2].type: "uint16": a coil holds one bit, so type must be bool`,
		`sources[0].tags[3].register: "output" is not one of holding, input, coil, discrete`,
		`sources[0].tags[3].type: "float16" is not one of`,
		`sources[0].tags[3].order: "ABDC" is not one of ABCD, CDAB, BADC, DCBA`,
		"sources[0].tags[4].address: -1 is out of range 0..65535",
		"sources[0].tags[4].scale: must not be 0",
	},
	"values.bad.yaml": {
		`values.bad.yaml:3: buffer.max_bytes: "1Gb" has an unknown unit "Gb"`,
		`values.bad.yaml:3: buffer.retain: duration "-1h" must not be negative`,
		`values.bad.yaml:4: blocks.heartbeat: "30" is not a duration`,
		`values.bad.yaml:8: sources[0].interval: "fast" is not a duration`,
		`values.bad.yaml:13: sources[0].tags[0].scale: "1,5" is not a decimal number`,
		`values.bad.yaml:14: sources[0].tags[0].offset: "0x10" is not a decimal number`,
		"values.bad.yaml:15: sources[0].tags[0].min: want a decimal number, got a sequence",
	},
}

func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.yaml")
	require.NoError(t, err)
	require.Len(t, expectedErrors, len(files), "every bad file has expected errors, and no more")
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			want, ok := expectedErrors[name]
			require.True(t, ok, "no expected errors for %s", name)
			c, err := Load(f)
			require.Error(t, err)
			require.Nil(t, c)
			lines := strings.Split(err.Error(), "\n")
			require.Len(t, lines, len(want), "got:\n%v", err)
			for i, w := range want {
				require.True(t, strings.HasPrefix(lines[i], f), "%q does not start with the file name", lines[i])
				require.Contains(t, lines[i], w)
			}
		})
	}
}

// TestAllProblemsAtOnce: a file with many problems, of decoding and of validation,
// reports each of them with its file, line and path.
func TestAllProblemsAtOnce(t *testing.T) {
	_, err := Parse([]byte(`gateway:
  site: Plant A
  idd: gw1
mqtt: {url: "mqtt://broker:1883", inflight: 0}
blocks:
  max_age: 1m
sources:
  - name: kiln1
    kind: modbus
    timeout: 2s
    modbus: {url: "tcp://192.0.2.10:502"}
    tags:
      - id: a
        unit: kwh
        address: 70000
        scale: 1/3
`), "plant.yaml")
	require.Error(t, err)
	require.Equal(t, strings.Join([]string{
		`plant.yaml:1: gateway.id: is required`,
		`plant.yaml:2: gateway.site: "Plant A" must match [a-z0-9][a-z0-9-]* (at most 64 bytes)`,
		`plant.yaml:3: gateway.idd: unknown key`,
		`plant.yaml:4: mqtt.inflight: 0 is out of range 1..65535`,
		`plant.yaml:6: blocks.max_age: 1m is longer than blocks.heartbeat (30s)`,
		`plant.yaml:10: sources[0].timeout: 2s must be shorter than interval (1s)`,
		`plant.yaml:14: sources[0].tags[0].unit: "kwh" is not a known unit (known: ` + reading.UnitList() + `)`,
		`plant.yaml:15: sources[0].tags[0].address: 70000 is out of range 0..65535`,
		`plant.yaml:16: sources[0].tags[0].scale: "1/3" is not a decimal number: invalid character '/'`,
	}, "\n"), err.Error())
}

func TestUnknownKey(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"top":    {"gateway: {site: a, id: b}\nfactorz: []\n", "x.yaml:2: factorz: unknown key"},
		"nested": {"gateway:\n  site: a\n  timezon: UTC\n", "x.yaml:3: gateway.timezon: unknown key"},
		"in a list": {"sources:\n  - name: a\n    tags:\n      - id: t\n        registr: input\n",
			"x.yaml:5: sources[0].tags[0].registr: unknown key"},
		"in a flow mapping": {"mqtt: {url: \"mqtt://b:1\", clientid: x}\n", "x.yaml:1: mqtt.clientid: unknown key"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "x.yaml")
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// TestDroppedListElement: yaml/v3 drops a list element it cannot decode, which would
// shift the indexes of the rest; Parse then reports the decoding error alone.
func TestDroppedListElement(t *testing.T) {
	_, err := Parse([]byte(`gateway: {site: a, id: b}
sources:
  - just-a-name
  - name: Bad Name
`), "x.yaml")
	require.Error(t, err)
	require.Contains(t, err.Error(), "x.yaml:3: cannot unmarshal")
	require.NotContains(t, err.Error(), "Bad Name")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	require.ErrorContains(t, err, "read config")
}

func TestHash(t *testing.T) {
	data := Example
	c, err := Parse(data, "example.yaml")
	require.NoError(t, err)
	require.Equal(t, sha256.Sum256(data), c.Hash)
}

// TestValidateBuiltInCode: Validate works on a Config that did not come from a file.
func TestValidateBuiltInCode(t *testing.T) {
	c := Default()
	err := c.Validate()
	require.Error(t, err)
	require.Equal(t, strings.Join([]string{
		"gateway.site: is required",
		"gateway.id: is required",
		"mqtt.url: is required (mqtt://host:port)",
		"mqtt.client_id: is required",
		"sources: at least one source is required",
	}, "\n"), err.Error())

	c, err = Parse(Example, "example.yaml")
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	c.Sources[0].Tags[3].Address = 70000
	require.EqualError(t, c.Validate(), "sources[0].tags[3].address: 70000 is out of range 0..65535")
}

func TestTimeoutDefault(t *testing.T) {
	for _, tc := range []struct{ interval, timeout, want string }{
		{"1s", "", "500ms"},
		{"100ms", "", "50ms"},
		{"10s", "", "5s"},
		{"1h", "", "5s"},
		{"10s", "8s", "8s"},
	} {
		t.Run(tc.interval+"/"+tc.timeout, func(t *testing.T) {
			y := "gateway: {site: a, id: b}\nmqtt: {url: \"mqtt://b:1\"}\nsources:\n  - name: s\n    kind: modbus\n" +
				"    modbus: {url: \"tcp://h:502\"}\n    tags: [{id: t, unit: kW}]\n    interval: " + tc.interval + "\n"
			if tc.timeout != "" {
				y += "    timeout: " + tc.timeout + "\n"
			}
			c, err := Parse([]byte(y), "x.yaml")
			require.NoError(t, err)
			want, err := time.ParseDuration(tc.want)
			require.NoError(t, err)
			require.Equal(t, want, c.Sources[0].Timeout.D())
		})
	}
}

func TestRegisterCount(t *testing.T) {
	for typ, n := range map[string]int{
		"bool": 1, "int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2,
		"int64": 4, "uint64": 4, "float64": 4, "float16": 0, "": 0,
	} {
		require.Equal(t, n, RegisterCount(typ), typ)
	}
	for _, typ := range types {
		require.NotZero(t, RegisterCount(typ), "every accepted type has a register count: %s", typ)
	}
}

// TestAliasBomb: a "billion laughs" file fails fast instead of expanding.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [%s]\n", i, i, strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 9)+fmt.Sprintf("*a%d", i-1))
	}
	b.WriteString("sources: *a9\n")
	start := time.Now()
	_, err := Parse([]byte(b.String()), "bomb.yaml")
	require.ErrorContains(t, err, "bomb.yaml:1: a0: unknown key")
	require.Less(t, time.Since(start), 5*time.Second)
}
