package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
)

// OPC UA security policies (the values of opcua.security) and their OPC UA names.
var opcuaPolicies = map[string]string{
	"none":                  "None",
	"basic256sha256":        "Basic256Sha256",
	"aes128_sha256_rsaoaep": "Aes128_Sha256_RsaOaep",
	"aes256_sha256_rsapss":  "Aes256_Sha256_RsaPss",
}

// OPCUAPolicyName returns the OPC UA name of a security value ("basic256sha256" ->
// "Basic256Sha256"), or "" for an unknown value.
func OPCUAPolicyName(security string) string { return opcuaPolicies[security] }

// Defaults of an OPC UA source.
const (
	DefaultOPCUAQueueSize = 10
	// OPCUAStateDir is where, below the directory of key_file, the client certificate,
	// its key and the trust directory live by default.
	OPCUAStateDir = "opcua"
)

// OPCUA is the connection of an OPC UA source.
type OPCUA struct {
	Endpoint string `yaml:"endpoint"` // opc.tcp://host:port[/path]
	// Security policy: none | basic256sha256 | aes128_sha256_rsaoaep | aes256_sha256_rsapss.
	// Required: "none" must be explicit.
	Security string `yaml:"security"`
	Mode     string `yaml:"mode"` // sign | signandencrypt; default signandencrypt ("" with none)
	Auth     string `yaml:"auth"` // anonymous | username | certificate; default anonymous
	// Username and PasswordFile for auth username.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// UserCertFile and UserKeyFile (PEM; the key PKCS#1 or PKCS#8 RSA) for auth certificate.
	UserCertFile string `yaml:"user_cert_file"`
	UserKeyFile  string `yaml:"user_key_file"`
	// CertFile and KeyFile are the client's application certificate and key, generated on
	// first use. Default {dir of key_file}/opcua/client.crt and client.key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// TrustDir holds trusted server certificates. Default {dir of key_file}/opcua/trusted.
	TrustDir string `yaml:"trust_dir"`
	// AcceptAnyServerCert skips the trust check (logged at start). Default false.
	AcceptAnyServerCert bool `yaml:"accept_any_server_cert"`
	// Collect is subscribe (monitored items) or poll (one batched Read per interval).
	// Default subscribe.
	Collect string `yaml:"collect"`
	// PublishingInterval of the subscription. Default (0) the source interval.
	PublishingInterval Duration `yaml:"publishing_interval"`
	// QueueSize of each monitored item. Default 10.
	QueueSize int `yaml:"queue_size"`
}

// Password reads PasswordFile (see Secret); it is empty when no file is configured.
func (o OPCUA) Password() (Secret, error) { return readSecret(o.PasswordFile) }

// Deadband is a data-change filter of an OPC UA monitored item: exactly one of Absolute
// (in the tag's unit) and Percent (of the variable's EURange) is set.
type Deadband struct {
	Absolute *Decimal `yaml:"absolute"`
	Percent  *Decimal `yaml:"percent"`
}

// fillOPCUA sets the defaults of an OPC UA source block and of its tags' OPC UA keys.
func fillOPCUA(in func(string) bool, p string, s *Source, keyFile string) {
	if s.Kind == "opcua" {
		for j := range s.Tags {
			setDefault(in, fmt.Sprintf("%stags[%d].timestamp", p, j), &s.Tags[j].Timestamp, "source")
		}
	}
	o := s.OPCUA
	if o == nil {
		return
	}
	dir := filepath.Join(filepath.Dir(keyFile), OPCUAStateDir)
	setDefault(in, p+"opcua.cert_file", &o.CertFile, filepath.Join(dir, "client.crt"))
	setDefault(in, p+"opcua.key_file", &o.KeyFile, filepath.Join(dir, "client.key"))
	setDefault(in, p+"opcua.trust_dir", &o.TrustDir, filepath.Join(dir, "trusted"))
	setDefault(in, p+"opcua.auth", &o.Auth, "anonymous")
	setDefault(in, p+"opcua.collect", &o.Collect, "subscribe")
	setDefault(in, p+"opcua.queue_size", &o.QueueSize, DefaultOPCUAQueueSize)
	if o.Security != "none" && o.Security != "" {
		setDefault(in, p+"opcua.mode", &o.Mode, "signandencrypt")
	}
	if o.PublishingInterval == 0 {
		o.PublishingInterval = s.Interval
	}
}

// checkOPCUA validates what is specific to OPC UA: the opcua block of a source of kind
// opcua and its tags' node keys; for any other kind, that no OPC UA key is set.
func (s *Source) checkOPCUA(v *checker, p string) {
	if s.Kind != "opcua" {
		if s.OPCUA != nil {
			v.add(p+".opcua", "only applies to kind opcua")
		}
		for i := range s.Tags {
			t := &s.Tags[i]
			tp := fmt.Sprintf("%s.tags[%d]", p, i)
			for _, f := range []struct {
				key string
				set bool
			}{{"node", t.Node != ""}, {"timestamp", t.Timestamp != ""}, {"sampling_interval", t.SamplingInterval != 0}, {"deadband", t.Deadband != nil}} {
				if f.set {
					v.add(tp+"."+f.key, "only applies to kind opcua")
				}
			}
		}
		return
	}
	if s.OPCUA == nil {
		v.add(p+".opcua", "is required for kind opcua")
	} else {
		s.OPCUA.check(v, p+".opcua", s.Interval)
	}
	for i := range s.Tags {
		s.Tags[i].checkOPCUA(v, fmt.Sprintf("%s.tags[%d]", p, i))
	}
}

func (o *OPCUA) check(v *checker, p string, interval Duration) {
	u, err := url.Parse(o.Endpoint)
	switch {
	case o.Endpoint == "":
		v.add(p+".endpoint", "is required (opc.tcp://host:port)")
	case err != nil || u.Scheme != "opc.tcp":
		v.add(p+".endpoint", "%q: want opc.tcp://host:port", o.Endpoint)
	default:
		if _, err := hostPort(u.Host); err != nil || u.Hostname() == "" {
			v.add(p+".endpoint", "%q: want opc.tcp://host:port", o.Endpoint)
		}
		if u.User != nil {
			v.add(p+".endpoint", "must not hold credentials: use auth, username and password_file")
		}
	}
	switch {
	case o.Security == "":
		v.add(p+".security", "is required (none, basic256sha256, aes128_sha256_rsaoaep or aes256_sha256_rsapss; none must be explicit)")
	case OPCUAPolicyName(o.Security) == "":
		v.add(p+".security", "%q is not one of none, basic256sha256, aes128_sha256_rsaoaep, aes256_sha256_rsapss", o.Security)
	case o.Security == "none":
		if o.Mode != "" {
			v.add(p+".mode", "%q does not apply to security none", o.Mode)
		}
	default:
		oneOf(v, p+".mode", o.Mode, "sign", "signandencrypt")
	}
	if oneOf(v, p+".auth", o.Auth, "anonymous", "username", "certificate") {
		user := o.Username != "" || o.PasswordFile != ""
		cert := o.UserCertFile != "" || o.UserKeyFile != ""
		switch o.Auth {
		case "username":
			if o.Username == "" {
				v.add(p+".username", "is required for auth username")
			}
			if o.PasswordFile == "" {
				v.add(p+".password_file", "is required for auth username")
			}
			if cert {
				v.add(p+".user_cert_file", "only applies to auth certificate")
			}
		case "certificate":
			if o.UserCertFile == "" || o.UserKeyFile == "" {
				v.add(p+".user_cert_file", "user_cert_file and user_key_file are required for auth certificate")
			}
			if user {
				v.add(p+".username", "only applies to auth username")
			}
		default:
			if user {
				v.add(p+".username", "only applies to auth username")
			}
			if cert {
				v.add(p+".user_cert_file", "only applies to auth certificate")
			}
		}
		if o.Auth != "anonymous" && o.Security == "none" {
			// The password or the user key would cross the network unprotected.
			v.add(p+".auth", "%s needs a security policy other than none", o.Auth)
		}
	}
	required(v, p+".cert_file", o.CertFile)
	required(v, p+".key_file", o.KeyFile)
	required(v, p+".trust_dir", o.TrustDir)
	oneOf(v, p+".collect", o.Collect, "subscribe", "poll")
	if o.PublishingInterval <= 0 {
		v.add(p+".publishing_interval", "%s must be > 0", o.PublishingInterval)
	} else if o.Collect == "subscribe" && o.PublishingInterval > interval && interval > 0 {
		v.add(p+".publishing_interval", "%s is longer than the source interval (%s)", o.PublishingInterval, interval)
	} else if o.PublishingInterval.D() < 10*time.Millisecond {
		v.add(p+".publishing_interval", "%s is shorter than 10ms", o.PublishingInterval)
	}
	if o.QueueSize < 1 || o.QueueSize > 10000 {
		v.add(p+".queue_size", "%d is out of range 1..10000", o.QueueSize)
	}
}

func (t *Tag) checkOPCUA(v *checker, p string) {
	if t.Node == "" {
		v.add(p+".node", "is required for kind opcua (e.g. \"ns=2;s=Kiln.FuelFlow\" or \"nsu=urn:plant;i=1001\")")
	} else if err := checkNodeID(t.Node); err != "" {
		v.add(p+".node", "%q %s", t.Node, err)
	}
	oneOf(v, p+".timestamp", t.Timestamp, "source", "server")
	if d := t.Deadband; d != nil {
		switch {
		case (d.Absolute == nil) == (d.Percent == nil):
			v.add(p+".deadband", "give exactly one of absolute and percent")
		case d.Absolute != nil && d.Absolute.Mantissa < 0:
			v.add(p+".deadband.absolute", "%s must not be negative", d.Absolute)
		case d.Percent != nil && (d.Percent.Mantissa < 0 || d.Percent.Cmp(reading.FromInt64(100)) > 0):
			v.add(p+".deadband.percent", "%s is out of range 0..100", d.Percent)
		}
	}
	for _, f := range []struct {
		key string
		set bool
	}{{"register", t.Register != ""}, {"address", t.Address != 0}, {"type", t.Type != ""}, {"order", t.Order != ""},
		{"scale", t.Scale != nil}, {"offset", t.Offset != nil}, {"unit_id", t.UnitID != 0}} {
		if f.set {
			v.add(p+"."+f.key, "only applies to kind modbus")
		}
	}
}

// checkNodeID checks the syntax of an OPC UA node id: [ns=N; | nsu=URI;] then i=, s=, g=
// or b=. It returns "" when the syntax is right, else what is wrong.
func checkNodeID(s string) string {
	id := s
	if ns, rest, ok := strings.Cut(s, ";"); ok && (strings.HasPrefix(ns, "ns=") || strings.HasPrefix(ns, "nsu=")) {
		id = rest
		if n, isIndex := strings.CutPrefix(ns, "ns="); isIndex {
			var idx int
			if _, err := fmt.Sscanf(n, "%d", &idx); err != nil || idx < 0 || idx > 65535 || fmt.Sprint(idx) != n {
				return "has a namespace index outside 0..65535"
			}
		} else if ns == "nsu=" {
			return "has an empty namespace URI"
		}
	}
	if len(id) < 3 || id[1] != '=' || !strings.ContainsRune("isgb", rune(id[0])) {
		return "is not a node id (want [ns=N;|nsu=URI;] followed by i=, s=, g= or b=)"
	}
	if id[0] == 'i' {
		var n uint64
		if _, err := fmt.Sscanf(id[2:], "%d", &n); err != nil || fmt.Sprint(n) != id[2:] || n > 1<<32-1 {
			return "has a numeric identifier outside 0..4294967295"
		}
	}
	return ""
}
