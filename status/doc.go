// Package status is the agent's local status server (ARCHITECTURE.md "Local status"):
// /healthz, /readyz, /status (JSON), /metrics (Prometheus text) and / (an HTML page with
// small SVG charts of the last hour, rendered on the server, with no external assets and no
// JavaScript).
//
// The package does not know the agent: it consumes a Provider, which returns a Snapshot
// (this package's own type) on demand, and keeps a ring of per-minute samples for the
// charts. A listen address that is not loopback requires basic authentication.
package status
