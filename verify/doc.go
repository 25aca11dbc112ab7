// Package verify checks the signed, hash-chained block streams an agent publishes
// (ARCHITECTURE.md "Verifier"): per log it follows seq and chain, verifies signatures under
// trusted keys and key rotations, drops duplicates, holds out-of-order blocks in a bounded
// reorder window, classifies gaps as declared or undeclared, and saves equivocation
// evidence. It is the engine of `mrv-agent verify` and the oracle of the end-to-end tests.
//
// A Verifier is fed one received message at a time with Add, from a broker subscription
// (Subscribe) or a capture file (ReadCapture), and reports a Summary.
//
// # Caveats
//
//   - Envelopes carry a kid, not a public key. With Options.TOFU the key is learned from the
//     first signed status (birth) message of each gateway (topic mrv/v1/{site}/{gateway}/status),
//     so a TOFU subscription or capture must include the status topics.
//   - Time inside the verifier is the receive time given to Add and Tick; nothing reads the
//     wall clock, so replaying a capture gives the same result as the live run did.
//   - A block that arrives after the verifier skipped over its seq (reorder window overflow
//     or expiry), typically resent on request (Options.Resend), fills the hole when its key
//     and chain links check out on both sides; the gap then no longer counts. A block behind
//     the verified range that is in no hole (before the join, past the history) is "late".
//   - Truncation is judged on record times against Options.Until (default: the latest
//     receive time): a log whose last record is older than Until − 2×Heartbeat is
//     "truncated", unless a later log of the same origin names it in its genesis.
//   - With Options.StatePath the state is saved about once a second and at Finish/Close; a
//     verifier that crashes loses up to a second of it and may report (and, with resend,
//     ask again for) blocks it had already seen. Undeclared gaps are carried over and
//     reported by every run until filled or declared.
package verify
