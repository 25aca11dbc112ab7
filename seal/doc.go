// Package seal gives each stream its seq and hash chain, builds blocks and signs them once
// as tagged COSE_Sign1 with Ed25519 (ARCHITECTURE.md "Streams, records, blocks"). It is the
// only package that holds the gateway's private key.
//
// # Caveats
//
// Parse is strict: an envelope must be in exactly the canonical encoding this format writes,
// so that every party computes the same chain hash over the same bytes.
package seal
