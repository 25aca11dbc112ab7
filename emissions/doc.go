// Package emissions computes emissions from readings, following ../shared/mrv-methods.md
// (section numbers are cited where each formula lives): calculation-based methods (§2),
// CEMS (§3), aggregation windows (§4) and derived-value flags (§5.2).
//
// # Basics
//
// A Calculator is pure: no I/O, no clock, no goroutines. The pipeline feeds it readings
// (Observe, with the origin, log id and seq that the sealer gave each reading) and a time
// watermark (Advance): every window whose end is at or before the watermark closes and
// becomes a Result, a derived record to seal in the emission's own stream. Snapshot and
// Restore carry the whole state across restarts; commit the snapshot in the same buffer
// transaction as the blocks whose readings it has seen.
//
// Windows are the minute, the hour, optional shifts and the local day, in
// gateway.timezone (§4), plus batches delimited by a state tag. Results are computed in
// float64 (§1.5) and written as exact decimals through reading.FromFloat64: the shortest
// decimal that reads back as the same float64. NaN and ±Inf never reach a record: a
// window whose result is not finite has no values and is flagged missing.
//
// # Caveats
//
// A Calculator is not safe for concurrent use. Late data — a counter reading whose delta
// reaches back into windows already closed — revises those windows (a new record with
// revision+1) as long as they are retained: minutes for RetainMinutes, hours, shifts and
// days for RevisionHorizon after their end. Out-of-order rate readings (older than the
// last one of the same tag) cannot be placed without history and are counted in
// Stats.LateDropped.
package emissions

import _ "time/tzdata" // gateways often lack a tz database; windows are local (§4)
