// Package modbus is the Modbus collector: Modbus TCP, RTU on a serial line and RTU over TCP
// (serial gateways in transparent mode). It validates a source's tags, plans the fewest read
// requests that cover them (per unit id and function, ≤125 registers or 2000 bits, holes up
// to modbus.max_gap bridged, a tag never split), and performs one poll per Read, decoding each
// tag at its own width and order into an exact decimal.
//
// # Transports
//
// TCP goes through goburrow/modbus's TCP handler. RTU and RTU over TCP use goburrow's RTU
// packager (address, PDU, CRC-16) with this package's transporter, which frames each reply
// by its own function byte and byte count: goburrow's serial transporter waits for a
// full-size reply after a 5-byte exception reply and reports a timeout (LIBRARIES.md §2).
// Serial ports are opened non-blocking in raw mode (Linux only) so that deadlines are exact,
// and each device path has one process-wide lock: sources sharing an RS-485 bus take turns
// request by request, and a port open at one line setting is refused to a source that wants
// another.
//
// # Faults
//
// Units of one connection or bus are polled in turn; each request gets the source timeout,
// but at most an equal share of what is left of the poll's deadline among the unit ids still
// to poll. A timeout or transport error closes the connection (the next request re-dials) and
// makes that unit's tags Bad for this poll; the other units are still read. Read fails (and
// the Poller backs off) only when no request got any answer.
//
// # Caveats
//
// goburrow/modbus v0.1.0 never recovers from a transport error by itself: after a timeout it
// stays one reply behind, after a reset it keeps failing (LIBRARIES.md §2), hence the close
// after every such error. RTU frames carry no transaction id: after a timeout the serial
// input is flushed before the next request, but a reply later than the timeout that arrives
// while the next request to the same unit waits, with the same byte count, cannot be told
// apart; set the timeout above the slowest device's reply time. The library has no context
// support: a request is bounded by its Timeout, so a cancelled (not expired) context is
// noticed between requests only.
package modbus
