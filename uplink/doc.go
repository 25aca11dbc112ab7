// Package uplink publishes sealed blocks to an MQTT 3.1.1 broker (paho.mqtt.golang v1.5.1).
//
// # Basics
//
// A [Publisher] reads envelopes from a [Queue] (declared here; the buffer satisfies it
// through an adapter) and publishes each one, QoS 1 and not retained, on
// Topic(site, gateway, stream). Each stream is published in seq order; across streams the
// Publisher takes turns (round robin) within one window of at most Config.Inflight
// unacknowledged publishes. A block is marked published (Queue.MarkPublished) only after
// its PUBACK arrived on the connection it was sent on, and, per stream, only once every
// earlier block of that stream was acknowledged as well: the cursor never skips a block.
//
// On every connect the Publisher publishes the birth message (retained, QoS 1) on
// StatusTopic; the death message is the MQTT will and is also published on a clean stop.
//
// # Caveats
//
// paho's own reconnect is off (LIBRARIES.md §3: with AutoReconnect a QoS 1 token can
// complete with a nil error although no PUBACK arrived). The Publisher owns the connection
// instead: on a lost connection, a failed publish or a PUBACK that does not come within
// Config.AckTimeout it closes the socket (without an MQTT DISCONNECT, so the broker sends
// the will), drops the client, builds a new one after a jittered backoff and resends every
// unacknowledged block from the lowest unacknowledged seq. Delivery is at least once:
// verifiers drop duplicates by (origin, log_id, seq).
package uplink
