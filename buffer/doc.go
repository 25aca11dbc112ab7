// Package buffer is the agent's durable store of sealed envelopes: one bbolt file holding
// each stream's blocks keyed by first seq, the stream heads (log id, next seq, last hash,
// publish cursor), meta values (boot epoch, emissions state, ...), quarantined values and
// unsealed gaps. The byte layout is in FORMAT.md.
//
// # Basics
//
// The pipeline is the only writer: it calls Commit once per seal tick with every block
// sealed at that tick, the new heads and meta values; Commit returns only after bbolt's
// fsync, so a reading is accepted only when Commit returns nil. The uplink reads with
// Next (copies, no transaction held after return) from another goroutine and reports
// broker acknowledgements with MarkPublished, which the next Commit persists.
//
// Retention runs inside Commit: published blocks older than Options.Retain are deleted;
// above Options.MaxBytes (live bytes = sum of stored block values) published blocks go
// oldest first, then unpublished ones, whose ranges TakeDropped reports so the pipeline
// seals a gap-seq "buffer-full". Blocks of the tick being committed are never dropped.
// A run that continues the stream's previous dropped run is reported from that run's
// start, and a gap whose gap-seq record was in blocks dropped before they were published is
// reported again (FORMAT.md, carries): no declaration is lost with the blocks that held it.
// Blocks handed out by NextToPublish (in flight) are not dropped while unpublished.
//
// Every stored value carries a version byte and a CRC-32C. A block value that fails them
// is moved to the quarantine bucket (at Open, or by the Next that meets it), never
// served, and reported by TakeQuarantined so the pipeline seals a gap-seq "quarantined".
// Reported but untaken gaps survive a restart; gaps handed out by TakeQuarantined or
// TakeDropped are forgotten durably by the next successful Commit, which should carry
// the gap-seq records.
//
// # Caveats
//
// Open fails after Options.Timeout (default 5 s) with ErrInUse when another process holds
// the file. A corrupt file (bbolt ErrInvalid/ErrChecksum/ErrVersionMismatch, a panic while
// opening or loading, a failed tx.Check, an unreadable head or epoch) is renamed to
// "<path>.corrupt-<unix>" and a fresh file is opened; Recovered reports it and the
// pipeline must start new logs. A rollback to the previous bbolt transaction (one meta page
// lost) is not detectable here: compare Heads with the retained birth message.
//
// The file never shrinks; compaction is not implemented yet.
package buffer
