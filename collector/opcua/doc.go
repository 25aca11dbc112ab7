// Package opcua is the OPC UA collector (gopcua v0.8.0): a Source that subscribes to
// monitored items (or polls with batched Reads), maps StatusCodes to quality
// (mrv-methods.md §5) and converts variants to exact decimals at their own width.
//
// # Supervision
//
// gopcua's own reconnect can report Connected and deliver nothing (upstream #879, #854),
// so AutoReconnect is off and Read supervises: a lost connection, a publish error, a
// failed watchdog Read of Server_ServerStatus_CurrentTime (i=2258), or, from a server
// that has shown it updates its clock, no notification for 3 publishing intervals (at
// least 1 s each) closes the client (a closed gopcua client is never reused). The next
// Read starts a fresh client in the background (at most one attempt at a time, bounded by
// Options.ConnectTimeout): endpoints, trust check, session, namespace URIs resolved again,
// a new subscription and monitored items, each item's status checked (refused items are
// dropped and reported once as a Bad reading). While there is no connection Read returns
// an error, so the Poller backs off and the agent seals a gap-time record. Keep-alives are
// not surfaced by gopcua; the subscription also monitors i=2258 so that quiet meters do
// not look like a dead subscription.
//
// # Security
//
// The client certificate (RSA-2048, self-signed, URI SAN urn:mrv-agent:{site}:{gateway},
// valid 2 years) is created once and reused; RenewIdentity replaces it. Server
// certificates are pinned by SHA-256 thumbprint against the trust directory before the
// secure channel opens; a refused one is kept in the "rejected" directory beside it and
// reported as *UntrustedError naming the thumbprint and the trust command.
//
// # Caveats
//
// gopcua v0.8.0's binary decoder panics on some malformed messages (a variant array length
// below -1), and it does so in its own goroutine: a hostile or broken server can crash the
// process. The gopcua server package used by the simulator answers GetEndpoints only for
// the URL it listens on (see sim.OPCUAOptions.Advertise) and supports policy None only.
package opcua
