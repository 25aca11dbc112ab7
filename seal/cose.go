package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/veraison/go-cose"
)

// Content types of the protected header (label 3). A block and a status message are signed
// the same way and told apart by this header, so one can never be replayed as the other.
const (
	ContentTypeBlock  = "application/vnd.mrv.block+cbor;v=1"
	ContentTypeStatus = "application/vnd.mrv.status+cbor;v=1"
)

// MaxEnvelopeBytes bounds what Parse accepts.
const MaxEnvelopeBytes = 4<<20 + 1024

// ErrBadSignature is returned when a signature does not verify under the given key.
var ErrBadSignature = errors.New("signature does not verify")

// Sign returns the tagged COSE_Sign1 (RFC 9052) of payload: protected header
// {1: -8 (EdDSA), 3: contentType, 4: kid}, empty unprotected header, no external AAD.
func (k *Key) Sign(payload []byte, contentType string) ([]byte, error) {
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
	msg.Headers.Protected[cose.HeaderLabelContentType] = contentType
	msg.Headers.Protected[cose.HeaderLabelKeyID] = k.Kid[:]
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, k.signer); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return msg.MarshalCBOR()
}

// Signed is a parsed, not yet verified, COSE_Sign1 envelope.
type Signed struct {
	Kid         [32]byte
	ContentType string
	Payload     []byte
	msg         *cose.Sign1Message
}

// Parse decodes a tagged COSE_Sign1 envelope strictly: it must carry exactly the protected
// header this format defines (EdDSA, a content type, a 32-byte kid), an empty unprotected
// header, and re-encode to the same bytes. It does not verify the signature.
func Parse(envelope []byte) (*Signed, error) {
	if len(envelope) > MaxEnvelopeBytes {
		return nil, fmt.Errorf("envelope: %d bytes, more than %d", len(envelope), MaxEnvelopeBytes)
	}
	msg := cose.NewSign1Message()
	if err := msg.UnmarshalCBOR(envelope); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	p := msg.Headers.Protected
	if len(p) != 3 {
		return nil, fmt.Errorf("envelope: protected header has %d parameters, want 3", len(p))
	}
	alg, err := p.Algorithm()
	if err != nil || alg != cose.AlgorithmEdDSA {
		return nil, fmt.Errorf("envelope: algorithm %v, want EdDSA (-8)", p[cose.HeaderLabelAlgorithm])
	}
	ct, ok := p[cose.HeaderLabelContentType].(string)
	if !ok || (ct != ContentTypeBlock && ct != ContentTypeStatus) {
		return nil, fmt.Errorf("envelope: content type %v is not one of this format", p[cose.HeaderLabelContentType])
	}
	kid, ok := p[cose.HeaderLabelKeyID].([]byte)
	if !ok || len(kid) != 32 {
		return nil, errors.New("envelope: kid must be a 32-byte string")
	}
	if len(msg.Headers.Unprotected) != 0 {
		return nil, errors.New("envelope: unprotected header must be empty")
	}
	if len(msg.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("envelope: signature of %d bytes, want %d", len(msg.Signature), ed25519.SignatureSize)
	}
	// Canonical form: the same message must re-encode to the same bytes, or two parties
	// could hash one block differently.
	again, err := msg.MarshalCBOR()
	if err != nil || !bytes.Equal(again, envelope) {
		return nil, errors.New("envelope: not in canonical encoding")
	}
	s := &Signed{ContentType: ct, Payload: msg.Payload, msg: msg}
	copy(s.Kid[:], kid)
	return s, nil
}

// Verify checks the signature under pub, and that pub is the key the kid names.
func (s *Signed) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify: public key of %d bytes", len(pub))
	}
	if KeyID(pub) != s.Kid {
		return fmt.Errorf("verify: kid %x is not the given key's (%x)", s.Kid[:8], KeyID(pub))
	}
	v, err := cose.NewVerifier(cose.AlgorithmEdDSA, pub)
	if err != nil {
		return err
	}
	if err := s.msg.Verify(nil, v); err != nil {
		return fmt.Errorf("verify: %w: %w", ErrBadSignature, err)
	}
	return nil
}

// SigStructure returns the exact bytes that were signed (RFC 9052 §4.4:
// ["Signature1", protected, empty bstr, payload]) and the signature, for checks with other tools.
func (s *Signed) SigStructure() (tbs, sig []byte, err error) {
	tbs, err = cborSigStructure(s.msg.Headers.RawProtected, s.msg.Payload)
	return tbs, s.msg.Signature, err
}
