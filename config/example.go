package config

import _ "embed"

// Example is the documented example configuration, printed by `mrv-agent example-config`:
// every key, its meaning and its default. Treat it as read-only.
//
//go:embed example.yaml
var Example []byte
