package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/mrv-agent/mrv-agent/reading"
)

func TestDecimalExact(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want reading.Value
	}{
		{"0.1", reading.Value{Mantissa: 1, Exp: -1}},
		{"'0.1'", reading.Value{Mantissa: 1, Exp: -1}},
		{"0.30000000000000004", reading.Value{Mantissa: 30000000000000004, Exp: -17}},
		{"-12.50", reading.Value{Mantissa: -125, Exp: -1}},
		{"1e3", reading.Value{Mantissa: 1, Exp: 3}},
		{"4294967296", reading.Value{Mantissa: 4294967296}},
		{"123456789.123456789", reading.Value{Mantissa: 123456789123456789, Exp: -9}},
		{"0", reading.Value{}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Decimal
			require.NoError(t, yaml.Unmarshal([]byte(tc.in), &d))
			require.Equal(t, tc.want, d.Value)

			out, err := yaml.Marshal(d)
			require.NoError(t, err)
			var back Decimal
			require.NoError(t, yaml.Unmarshal(out, &back))
			require.Equal(t, d, back, "round trip through %q", out)
		})
	}
}

func TestDecimalErrors(t *testing.T) {
	var v struct {
		A int     `yaml:"a"`
		D Decimal `yaml:"d"`
	}
	for in, want := range map[string]string{
		"a: 1\nd: abc":                  `line 2: column 4: "abc" is not a decimal number`,
		"a: 1\nd: .inf":                 `line 2: column 4: ".inf" is not a decimal number`,
		"a: 1\nd: 12345678901234567891": `"12345678901234567891" is not a decimal number: more than 18 significant digits`,
		"a: 1\n\nd: {x: 1}":             "line 3: column 4: want a decimal number, got a mapping",
		"a: 1\nd: 1e999":                `"1e999" is not a decimal number: exponent out of range`,
		"a: 1\nd: 0x1F":                 `"0x1F" is not a decimal number`,
		"a: 1\nd: 1_000":                `"1_000" is not a decimal number`,
		"a: 1\nd: 12.5\n# trailing\n\n": "",
	} {
		err := yaml.Unmarshal([]byte(in), &v)
		if want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, want, in)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "15s", want: "15s"},
		{in: "100ms", want: "100ms"},
		{in: "720h", want: "720h"},
		{in: "1h30m", want: "1h30m"},
		{in: "90s", want: "1m30s"},
		{in: "0", want: "0s"},
		{in: "-1s", err: `line 1: column 1: duration "-1s" must not be negative`},
		{in: "15", err: `line 1: column 1: "15" is not a duration`},
		{in: "[1s]", err: "want a duration"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := yaml.Unmarshal([]byte(tc.in), &d)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			out, err := yaml.Marshal(d)
			require.NoError(t, err)
			require.Equal(t, tc.want+"\n", string(out))
			var back Duration
			require.NoError(t, yaml.Unmarshal(out, &back))
			require.Equal(t, d, back)
		})
	}
	require.Equal(t, 168*time.Hour, Duration(168*time.Hour).D())
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		out  string
		err  string
	}{
		{in: "1048576", want: MiB, out: "1MiB"},
		{in: "1000", want: 1000, out: "1kB"},
		{in: "1500", want: 1500, out: "1500B"},
		{in: "500kB", want: 500_000, out: "500kB"},
		{in: "64 MiB", want: 64 * MiB, out: "64MiB"},
		{in: "1GiB", want: GiB, out: "1GiB"},
		{in: "1.5GiB", want: 3 * GiB / 2, out: "1536MiB"},
		{in: "2GB", want: 2_000_000_000, out: "2GB"},
		{in: "3KiB", want: 3 * KiB, out: "3KiB"},
		{in: "7B", want: 7, out: "7B"},
		{in: "0", want: 0, out: "0B"},
		{in: "-1", err: `size "-1" must not be negative`},
		{in: "-1MiB", err: "must not be negative"},
		{in: "1Gb", err: `"1Gb" has an unknown unit "Gb"`},
		{in: "0.5B", err: "not a whole number of bytes"},
		{in: "MiB", err: `"MiB" is not a size`},
		{in: "9000000TiB", err: `size "9000000TiB" is too large`},
		{in: "1e30", err: "is too large"},
		{in: "9223372036854775807", want: 1<<63 - 1, out: "9223372036854775807B"},
		{in: "9223372036854775808", err: "is not a size"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var b ByteSize
			err := yaml.Unmarshal([]byte(tc.in), &b)
			if tc.err != "" {
				require.ErrorContains(t, err, "line 1: column 1: ")
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, b)
			out, err := yaml.Marshal(b)
			require.NoError(t, err)
			require.Equal(t, tc.out+"\n", string(out))
		})
	}
}

func TestSecret(t *testing.T) {
	s := Secret("hunter2")
	require.Equal(t, "hunter2", s.Reveal())
	for _, f := range []string{"%v", "%s", "%q", "%#v", "%+v"} {
		require.NotContains(t, fmt.Sprintf(f, s), "hunter2", f)
		require.NotContains(t, fmt.Sprintf(f, struct{ P Secret }{s}), "hunter2", f)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("connect", "password", s)
	require.Contains(t, buf.String(), `"password":"REDACTED"`)
	j, err := json.Marshal(map[string]Secret{"p": s})
	require.NoError(t, err)
	require.JSONEq(t, `{"p":"REDACTED"}`, string(j))
}

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	for _, tc := range []struct{ name, content, want string }{
		{"plain", "s3cret", "s3cret"},
		{"newline", "s3cret\n", "s3cret"},
		{"crlf", "s3cret\r\n", "s3cret"},
		{"inner spaces kept", " a b \n", " a b "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := MQTT{PasswordFile: write(tc.name, tc.content)}.Password()
			require.NoError(t, err)
			require.Equal(t, tc.want, p.Reveal())
		})
	}
	p, err := MQTT{}.Password()
	require.NoError(t, err)
	require.Empty(t, p.Reveal())
	_, err = Status{PasswordFile: filepath.Join(dir, "missing")}.Password()
	require.ErrorContains(t, err, "read password file")
}
