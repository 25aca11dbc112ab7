// Package reading defines what every stage of the agent passes on: a Reading (one value of
// one tag at one instant, with its quality), the exact decimal Value, the closed Unit
// vocabulary, and the record and block schema of the signed streams with their
// deterministic CBOR encoding and strict decoding (docs/record-format.md).
//
// # Caveats
//
// Values are exact decimals. Arithmetic that cannot be represented exactly (an int64
// mantissa overflow) reports !ok instead of rounding; callers mark such a reading Bad.
package reading
