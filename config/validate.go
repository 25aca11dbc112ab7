package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// fieldError is one validation problem, at a path such as "sources[1].tags[3].address".
type fieldError struct{ path, msg string }

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

type checker struct{ errs []*fieldError }

func (c *checker) add(path, format string, args ...any) {
	c.errs = append(c.errs, &fieldError{path, fmt.Sprintf(format, args...)})
}

// Validate checks the configuration as a whole and reports every problem at once
// (errors.Join), each prefixed with its path:
//
//	sources[1].tags[3].address: 70000 is out of range 0..65535
//
// It reads no files and dials nothing; protocol planning is the collectors' job.
func (c *Config) Validate() error {
	errs := c.check()
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}

func (c *Config) check() []*fieldError {
	var v checker
	segment(&v, "gateway.site", c.Gateway.Site)
	segment(&v, "gateway.id", c.Gateway.ID)
	// "" and "Local" load too, but would make the config mean different things on
	// different machines.
	if _, err := time.LoadLocation(c.Gateway.Timezone); err != nil || c.Gateway.Timezone == "" || c.Gateway.Timezone == "Local" {
		v.add("gateway.timezone", "%q is not an IANA time zone (want a name such as \"UTC\" or \"Europe/Berlin\")", c.Gateway.Timezone)
	}
	required(&v, "key_file", c.KeyFile)

	required(&v, "buffer.path", c.Buffer.Path)
	if c.Buffer.MaxBytes < MiB {
		v.add("buffer.max_bytes", "%s is less than the minimum 1MiB", c.Buffer.MaxBytes)
	}
	positive(&v, "buffer.retain", c.Buffer.Retain)

	b := c.Blocks
	if b.MaxRecords < 1 || b.MaxRecords > reading.MaxRecords {
		v.add("blocks.max_records", "%d is out of range 1..%d", b.MaxRecords, reading.MaxRecords)
	}
	positive(&v, "blocks.heartbeat", b.Heartbeat)
	if positive(&v, "blocks.max_age", b.MaxAge) && b.Heartbeat > 0 && b.MaxAge > b.Heartbeat {
		v.add("blocks.max_age", "%s is longer than blocks.heartbeat (%s)", b.MaxAge, b.Heartbeat)
	}

	c.MQTT.check(&v)
	c.Status.check(&v)
	oneOf(&v, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(&v, "log.format", c.Log.Format, "auto", "text", "json")

	if len(c.Sources) == 0 {
		v.add("sources", "at least one source is required")
	}
	seen := map[string]int{}
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			v.add(p+".name", "%q is already the name of sources[%d]", s.Name, j)
		}
		seen[s.Name] = i
		s.check(&v, p)
	}
	c.checkEmissions(&v) // emissions.go
	return v.errs
}

func (m *MQTT) check(v *checker) {
	u := hostURL(v, "mqtt.url", m.URL, "mqtt", "mqtts", "tcp", "ssl", "tls")
	tls := u == nil || slices.Contains([]string{"mqtts", "ssl", "tls"}, u.Scheme)
	if !tls {
		for _, f := range []struct {
			key string
			set bool
		}{{"ca_file", m.CAFile != ""}, {"cert_file", m.CertFile != ""}, {"key_file", m.KeyFile != ""}, {"insecure_skip_verify", m.InsecureSkipVerify}} {
			if f.set {
				v.add("mqtt."+f.key, "only applies to mqtts:// (mqtt.url is %s://)", u.Scheme)
			}
		}
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		v.add("mqtt.cert_file", "cert_file and key_file must be given together")
	}
	if m.PasswordFile != "" && m.Username == "" {
		v.add("mqtt.password_file", "needs mqtt.username (MQTT sends no password without a user name)")
	}
	if m.ClientID == "" {
		v.add("mqtt.client_id", "is required")
	}
	if m.Inflight < 1 || m.Inflight > 65535 {
		v.add("mqtt.inflight", "%d is out of range 1..65535", m.Inflight)
	}
	if m.DrainRate < 0 {
		v.add("mqtt.drain_rate", "%d must not be negative (0 = no limit)", m.DrainRate)
	}
}

func (s *Status) check(v *checker) {
	if _, err := hostPort(s.Listen); err != nil {
		v.add("status.listen", "%q %v", s.Listen, err)
	}
	if (s.Username == "") != (s.PasswordFile == "") {
		v.add("status.username", "username and password_file must be given together")
	}
	// A status server reachable from the network requires basic authentication.
	if host, _, err := net.SplitHostPort(s.Listen); err == nil && s.Username == "" {
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			v.add("status.listen", "%q is not a loopback address: set status.username and status.password_file (basic auth)", s.Listen)
		}
	}
}

func (s *Source) check(v *checker, p string) {
	if segment(v, p+".name", s.Name) && s.Name == "agent" {
		v.add(p+".name", "%q is reserved for the agent's own stream", s.Name)
	}
	switch s.Kind {
	case "modbus":
		if s.Modbus == nil {
			v.add(p+".modbus", "is required for kind modbus")
		}
	case "opcua":
	case "":
		v.add(p+".kind", "is required (supported: modbus, opcua)")
	default:
		v.add(p+".kind", "%q is not a known kind (supported: modbus, opcua)", s.Kind)
	}
	s.checkOPCUA(v, p) // opcua.go
	if s.Modbus != nil {
		if s.Kind != "modbus" && s.Kind != "" {
			v.add(p+".modbus", "only applies to kind modbus")
		} else if s.Kind == "modbus" {
			s.Modbus.check(v, p+".modbus")
		}
	}
	if positive(v, p+".interval", s.Interval) && positive(v, p+".timeout", s.Timeout) && s.Timeout >= s.Interval {
		v.add(p+".timeout", "%s must be shorter than interval (%s)", s.Timeout, s.Interval)
	}
	if len(s.Tags) == 0 {
		v.add(p+".tags", "at least one tag is required")
	}
	seen := map[string]int{}
	for i := range s.Tags {
		t := &s.Tags[i]
		tp := fmt.Sprintf("%s.tags[%d]", p, i)
		if j, dup := seen[t.ID]; dup && t.ID != "" {
			v.add(tp+".id", "%q is already the id of %s.tags[%d]", t.ID, p, j)
		}
		seen[t.ID] = i
		t.check(v, tp, s.Kind == "modbus")
	}
}

func (m *ModbusIO) check(v *checker, p string) {
	u, err := url.Parse(m.URL)
	switch {
	case m.URL == "":
		v.add(p+".url", "is required (tcp://host:port, rtu:///dev/ttyX or rtuovertcp://host:port)")
		return
	case err != nil || !slices.Contains([]string{"tcp", "rtu", "rtuovertcp"}, u.Scheme):
		v.add(p+".url", "%q: want tcp://host:port, rtu:///dev/ttyX or rtuovertcp://host:port", m.URL)
		return
	case u.Scheme == "rtu":
		if u.Host != "" || u.Path == "" {
			v.add(p+".url", "%q: want rtu:///dev/ttyX (a device path, no host)", m.URL)
		}
	default:
		if _, err := hostPort(u.Host); err != nil || u.Hostname() == "" {
			v.add(p+".url", "%q: want %s://host:port", m.URL, u.Scheme)
		}
	}
	if m.Baud <= 0 {
		v.add(p+".baud", "%d must be > 0", m.Baud)
	}
	oneOf(v, p+".parity", m.Parity, "N", "E", "O")
	if m.StopBits != 1 && m.StopBits != 2 {
		v.add(p+".stop_bits", "%d must be 1 or 2", m.StopBits)
	}
	if m.MaxGap != nil && (*m.MaxGap < 0 || *m.MaxGap > 125) {
		v.add(p+".max_gap", "%d is out of range 0..125", *m.MaxGap)
	}
}

var (
	registers = []string{"holding", "input", "coil", "discrete"}
	orders    = []string{"ABCD", "CDAB", "BADC", "DCBA"}
	types     = []string{"uint16", "int16", "uint32", "int32", "float32", "uint64", "int64", "float64", "bool"}
)

// RegisterCount returns the number of 16-bit registers a Modbus value type occupies, or 0
// for an unknown type. A bool is one coil, discrete input or register.
func RegisterCount(typ string) int {
	switch typ {
	case "bool", "int16", "uint16":
		return 1
	case "int32", "uint32", "float32":
		return 2
	case "int64", "uint64", "float64":
		return 4
	}
	return 0
}

func (t *Tag) check(v *checker, p string, modbus bool) {
	if !validTagID(t.ID) {
		v.add(p+".id", "%q must match [a-z0-9][a-z0-9_-]* (at most 64 bytes)", t.ID)
	}
	if !reading.Unit(t.Unit).Valid() {
		v.add(p+".unit", "%q is not a known unit (known: %s)", t.Unit, reading.UnitList())
	}
	if oneOf(v, p+".kind", t.Kind, "rate", "counter", "state") {
		if t.Kind == "counter" {
			if t.MaxRate == nil {
				v.add(p+".max_rate", "is required for a counter (units per second)")
			} else if t.MaxRate.Mantissa <= 0 {
				v.add(p+".max_rate", "%s must be > 0", t.MaxRate)
			}
			switch {
			case t.Rollover != nil && t.Width != 0:
				v.add(p+".rollover", "give rollover or width, not both")
			case t.Rollover != nil:
				if t.Rollover.Mantissa <= 0 {
					v.add(p+".rollover", "%s must be > 0", t.Rollover)
				}
			case t.Width != 0:
				if t.Width != 16 && t.Width != 32 && t.Width != 64 {
					v.add(p+".width", "%d must be 16, 32 or 64", t.Width)
				}
			default:
				v.add(p+".rollover", "a counter needs rollover or width (16, 32 or 64)")
			}
		} else {
			for _, f := range []struct {
				key string
				set bool
			}{{"rollover", t.Rollover != nil}, {"width", t.Width != 0}, {"max_rate", t.MaxRate != nil}} {
				if f.set {
					v.add(p+"."+f.key, "only applies to kind counter (kind is %s)", t.Kind)
				}
			}
		}
	}
	if t.Min != nil && t.Max != nil && t.Min.Cmp(t.Max.Value) >= 0 {
		v.add(p+".min", "%s must be less than max (%s)", t.Min, t.Max)
	}
	if !modbus {
		return
	}
	if t.UnitID < 0 || t.UnitID > 247 {
		v.add(p+".unit_id", "%d is out of range 0..247", t.UnitID)
	}
	regOK := oneOf(v, p+".register", t.Register, registers...)
	typOK := oneOf(v, p+".type", t.Type, types...)
	oneOf(v, p+".order", t.Order, orders...)
	if t.Address < 0 || t.Address > 65535 {
		v.add(p+".address", "%d is out of range 0..65535", t.Address)
	} else if n := RegisterCount(t.Type); typOK && t.Address+n-1 > 65535 {
		v.add(p+".address", "%d: %s needs %d registers, past the last address 65535", t.Address, t.Type, n)
	}
	if t.Bit != nil {
		if *t.Bit < 0 || *t.Bit > 15 {
			v.add(p+".bit", "%d is out of range 0..15", *t.Bit)
		}
		if t.Type != "bool" || t.Register == "coil" || t.Register == "discrete" {
			v.add(p+".bit", "only applies to type bool on a holding or input register")
		}
	} else if regOK && typOK && t.Type == "bool" && (t.Register == "holding" || t.Register == "input") {
		v.add(p+".bit", "is required for type bool on a %s register (0..15)", t.Register)
	}
	if regOK && typOK && (t.Register == "coil" || t.Register == "discrete") && t.Type != "bool" {
		v.add(p+".type", "%q: a %s holds one bit, so type must be bool", t.Type, t.Register)
	}
	if t.Scale != nil && t.Scale.Mantissa == 0 {
		v.add(p+".scale", "must not be 0")
	}
}

// validTagID reports whether id matches [a-z0-9][a-z0-9_-]*, at most 64 bytes.
func validTagID(id string) bool {
	return id != "" && id[0] != '_' && reading.ValidSegment(strings.ReplaceAll(id, "_", "-"))
}

func segment(v *checker, path, s string) bool {
	if s == "" {
		v.add(path, "is required")
		return false
	}
	if !reading.ValidSegment(s) {
		v.add(path, "%q must match [a-z0-9][a-z0-9-]* (at most 64 bytes)", s)
		return false
	}
	return true
}

func required(v *checker, path, s string) {
	if s == "" {
		v.add(path, "is required")
	}
}

func positive(v *checker, path string, d Duration) bool {
	if d <= 0 {
		v.add(path, "%s must be > 0", d)
		return false
	}
	return true
}

func oneOf(v *checker, path, s string, allowed ...string) bool {
	if slices.Contains(allowed, s) {
		return true
	}
	if s == "" {
		v.add(path, "is required (one of %s)", strings.Join(allowed, ", "))
	} else {
		v.add(path, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
	return false
}

// hostURL checks a scheme://host:port URL and returns it, or nil after reporting.
func hostURL(v *checker, path, s string, schemes ...string) *url.URL {
	if s == "" {
		v.add(path, "is required (%s://host:port)", schemes[0])
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || !slices.Contains(schemes, u.Scheme) {
		v.add(path, "%q: scheme must be one of %s", s, strings.Join(schemes, ", "))
		return nil
	}
	if _, err := hostPort(u.Host); err != nil || u.Hostname() == "" {
		v.add(path, "%q: want %s://host:port", s, u.Scheme)
		return nil
	}
	if u.User != nil {
		v.add(path, "must not hold credentials (%s://%s@...): use username and password_file", u.Scheme, u.User.Username())
	}
	return u
}

// hostPort checks "host:port" (host may be empty: all interfaces) and returns the port.
func hostPort(s string) (int, error) {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return 0, errors.New("is not host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("has no port in 1..65535")
	}
	return n, nil
}
