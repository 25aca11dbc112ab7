// Package collector turns meters into readings. A Source performs exactly one poll of one
// device (collector/modbus, collector/opcua); a Poller owns everything around it: the
// schedule aligned to the interval, the per-poll timeout, jittered exponential backoff while
// the device is down, and the source's health.
//
// A failed poll is data, not fatal: the Poller sends a Batch carrying the error (and any
// readings the source still produced, marked Bad) and keeps going.
package collector
