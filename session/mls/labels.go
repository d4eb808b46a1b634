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

// refHashOf is RefHash(label, the encoding marshal writes).
func (s *CipherSuite) refHashOf(label string, marshal func(*wire.Writer)) ([]byte, error) {
	return s.digestOf(func(w *wire.Writer) {
		w.Opaque([]byte(label))
		w.Vector(marshal)
	})
}

// digestOf is the suite's hash of what marshal writes, encoded in a
// scratch buffer (wire.GetScratch): hash inputs are never kept.
func (s *CipherSuite) digestOf(marshal func(*wire.Writer)) ([]byte, error) {
	var sum []byte
	err := withScratch(marshal, func(in []byte) error {
		sum = s.Digest(in)
		return nil
	})
	return sum, err
}

// withScratch encodes what marshal writes into a scratch buffer and hands
// it to use, which must not keep it.
func withScratch(marshal func(*wire.Writer), use func([]byte) error) error {
	w := wire.GetScratch()
	defer wire.PutScratch(w)
	marshal(w)
	b, err := w.Bytes()
	if err != nil {
		return err
	}
	return use(b)
}

// Reference-hash labels.
const (
	labelKeyPackageRef = "MLS 1.0 KeyPackage Reference"
	labelProposalRef   = "MLS 1.0 Proposal Reference"
)
