package config

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mrv-agent/mrv-agent/reading"
)

// nodeError reports a problem with one YAML node. A *yaml.TypeError lets the decoder
// carry on and report every such problem of the file at once; Parse turns "line N: column
// M:" into "file:N: path:".
func nodeError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: ", n.Line, n.Column) + fmt.Sprintf(format, args...)}}
}

// scalar returns the text of a scalar node, or a line-numbered error naming what was wanted.
func scalar(n *yaml.Node, want string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", nodeError(n, "want %s, got a %s", want, kindName(n.Kind))
	}
	return n.Value, nil
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "document"
}

// Duration is a time.Duration written as "15s", "100ms" or "720h". Negative durations are
// refused.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d as time.Duration does, without zero trailing units ("168h", "1m30s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok { // "1m0s" -> "1m", "1h0m0s" -> "1h0m"
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok { // "1h0m" -> "1h"
		s = t + "h"
	}
	return s
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "a duration such as \"15s\"")
	if err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return nodeError(n, "%q is not a duration (want a number with a unit: \"15s\", \"100ms\", \"720h\")", s)
	}
	if v < 0 {
		return nodeError(n, "duration %q must not be negative", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a size in bytes, written as a plain integer or with a unit: "64MiB", "1GiB",
// "500kB", "1.5GB". The result must be a whole number of bytes, not negative.
type ByteSize int64

// Byte-size units.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
)

var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"B", 1},
}

// ParseByteSize parses s as ByteSize.UnmarshalYAML does.
func ParseByteSize(s string) (ByteSize, error) {
	num := strings.TrimSpace(s)
	mult := ByteSize(1)
	if i := strings.LastIndexAny(num, "0123456789."); i >= 0 && i < len(num)-1 {
		unit := strings.TrimSpace(num[i+1:])
		num = num[:i+1]
		mult = 0
		for _, u := range byteUnits {
			if u.name == unit {
				mult = u.size
			}
		}
		if mult == 0 {
			return 0, fmt.Errorf("%q has an unknown unit %q (known: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)", s, unit)
		}
	}
	v, err := reading.ParseValue(num)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (want bytes, or a number with a unit: \"64MiB\", \"1GB\")", s)
	}
	if v.Mantissa < 0 {
		return 0, fmt.Errorf("size %q must not be negative", s)
	}
	v, ok := v.Mul(reading.FromInt64(int64(mult)))
	if ok && v.Exp < 0 {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	p := int64(1)
	for i := int32(0); i < v.Exp && ok; i++ {
		ok = p <= math.MaxInt64/10
		p *= 10
	}
	if !ok || v.Mantissa > math.MaxInt64/p {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(v.Mantissa * p), nil
}

// String formats b with the unit that divides it exactly into the smallest number
// ("1GiB", "2GB", "1500B").
func (b ByteSize) String() string {
	best := byteUnits[len(byteUnits)-1]
	for _, u := range byteUnits {
		if b%u.size == 0 && b/u.size < b/best.size {
			best = u
		}
	}
	return strconv.FormatInt(int64(b/best.size), 10) + best.name
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "a size such as \"64MiB\"")
	if err != nil {
		return err
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*b = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// Decimal is an exact decimal from the file: the scalar's text is parsed, never through a
// float, so "0.1" is exactly one tenth ({1, -1}).
type Decimal struct{ reading.Value }

// UnmarshalYAML implements yaml.Unmarshaler. Quoted numbers are accepted too.
func (d *Decimal) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalar(n, "a decimal number")
	if err != nil {
		return err
	}
	v, err := reading.ParseValue(s)
	if err != nil {
		return nodeError(n, "%q is not a decimal number: %s", s, strings.TrimPrefix(err.Error(), fmt.Sprintf("parse decimal %q: ", s)))
	}
	d.Value = v
	return nil
}

// MarshalYAML implements yaml.Marshaler, writing the exact decimal unquoted.
func (d Decimal) MarshalYAML() (any, error) {
	tag := "!!int"
	if d.Exp < 0 {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: d.String()}, nil
}

// Secret is a password or token. It prints, logs and marshals as "REDACTED", so it cannot
// leak through a log line, /status or an error; Reveal returns the value itself.
type Secret string

const redacted = "REDACTED"

// Reveal returns the secret's value, for the one call that needs it.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// readSecret reads a secret file, dropping one trailing line break; an empty path is an
// empty secret.
func readSecret(path string) (Secret, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	return Secret(s), nil
}
