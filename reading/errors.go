package reading

import "errors"

// ErrUnknownKind is returned when a record's kind code is not one this version knows.
var ErrUnknownKind = errors.New("unknown record kind")

// ErrNotCanonical is returned when a payload decodes but is not in the one deterministic
// encoding this format allows (RFC 8949 §4.2.1, canonical decimals), so two verifiers could
// read it differently.
var ErrNotCanonical = errors.New("payload is not canonical")
