// Package config is the agent's YAML configuration: schema, defaults, strict decoding and
// Validate, which reports every problem at once, each prefixed with its path.
//
// # Basics
//
// Load (or Parse) starts from Default, decodes the file over it with
// yaml.Decoder.KnownFields(true), fills the defaults that depend on other keys (the MQTT
// client id, source timeouts) and runs Validate. Every key and its default is documented
// in the embedded example.yaml (Example), which a test loads.
//
// Errors read "file:line: path: problem", one per line, for every problem in the file:
//
//	agent.yaml:31: sources[0].tags[2].unit: "kwh" is not a known unit (known: kWh, ...)
//
// # Caveats
//
// Numbers that end up in records (scale, offset, rollover, max_rate, min, max) are
// Decimal: the literal text is parsed exactly, never through a float. The time zone
// database is embedded (time/tzdata), so gateways without /usr/share/zoneinfo work.
// Passwords are read from files into a Secret, which never prints its value.
package config

import _ "time/tzdata" // gateway.timezone must load on gateways without a tz database
