package mls

import (
	"encoding/binary"

	"github.com/current-vpn/current/session/mls/wire"
)

// labelPrefix is prepended to every label MLS feeds into a KDF, a signature,
// an HPKE context or a reference hash (RFC 9420 section 5).
const labelPrefix = "MLS 1.0 "

// ExpandWithLabel is KDF.Expand(secret, KDFLabel, length) with
// KDFLabel = {uint16 length, "MLS 1.0 "+label, context}.
func (s *CipherSuite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	e := s.newExpander(secret)
	return e.expandWithLabel(label, context, length)
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func (s *CipherSuite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return s.ExpandWithLabel(secret, label, nil, s.Nh())
}

// DeriveTreeSecret is ExpandWithLabel(secret, label, uint32(generation), length).
func (s *CipherSuite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	var ctx [4]byte
	binary.BigEndian.PutUint32(ctx[:], generation)
	return s.ExpandWithLabel(secret, label, ctx[:], length)
}

// RefHash is Hash(RefHashInput{label, value}); the label is used as given,
// without the "MLS 1.0 " prefix, as RFC 9420 section 5.2 specifies.
func (s *CipherSuite) RefHash(label string, value []byte) ([]byte, error) {
	w := wire.NewWriter(nil)
	w.Opaque([]byte(label))
	w.Opaque(value)
	in, err := w.Bytes()
	if err != nil {
		return nil, err
	}
	return s.Digest(in), nil
}

// Reference-hash labels.
const (
	labelKeyPackageRef = "MLS 1.0 KeyPackage Reference"
	labelProposalRef   = "MLS 1.0 Proposal Reference"
)
