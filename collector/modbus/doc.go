// Package modbus is the Modbus TCP collector: it validates a source's tags, plans the
// fewest read requests that cover them (per unit id and function, ≤125 registers, small holes
// bridged, a tag never split), and performs one poll per Read with goburrow/modbus, decoding
// each tag at its own width and order into an exact decimal.
//
// # Caveats
//
// goburrow/modbus v0.1.0 never recovers from a transport error by itself: after a timeout it
// stays one reply behind, after a reset it keeps failing (LIBRARIES.md §2). Read therefore
// closes the connection after any error that is not a Modbus exception; the next request
// re-dials. The library has no context support: a request is bounded by its Timeout, which
// Read sets from the smaller of the source timeout and the context deadline, so a cancelled
// (not expired) context is noticed between requests only.
package modbus
