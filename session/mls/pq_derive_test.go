package mls

import (
	"bytes"
	"crypto/sha3"
	"encoding/binary"
	"testing"
)

// shakeLabeledDerive is draft-ietf-hpke-pq's LabeledDerive for a
// single-stage (SHAKE256) KDF, written out from the draft so that the
// suites' key derivation is pinned independently of crypto/hpke:
//
//	SHAKE256(ikm || "HPKE-v1" || suite_id || I2OSP(len(label), 2) || label
//	         || I2OSP(L, 2) || context, L)
func shakeLabeledDerive(suiteID, ikm []byte, label string, l int) []byte {
	h := sha3.NewSHAKE256()
	h.Write(ikm)
	h.Write([]byte("HPKE-v1"))
	h.Write(suiteID)
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(label))))
	h.Write([]byte(label))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(l)))
	out := make([]byte, l)
	h.Read(out)
	return out
}

// TestPQDeriveKeyPair pins docs/protocol.md 7.3: the leaf and path keys of
// suites 0xF001 (X-Wing, KEM 0x647a) and 0xF00A (ML-KEM-768, KEM 0x0041)
// come from draft-ietf-hpke-pq's DeriveKeyPair, whose private key is
// LabeledDerive(suite_id = "KEM" || I2OSP(kem_id, 2), ikm, "DeriveKeyPair",
// "", Nsk). The X-Wing draft's own DeriveKeyPair, SHAKE256(ikm, 32), gives
// other keys: a stack using it handshakes (the Welcome uses a fresh init
// key) and then fails the first commit whose path it must decrypt.
func TestPQDeriveKeyPair(t *testing.T) {
	ikm := bytes.Repeat([]byte{0x5a}, 32)
	for _, tc := range []struct {
		suite CipherSuiteID
		kem   uint16
		nsk   int
	}{
		{MLS128MLKEM768X25519AES128GCMSHA256Ed25519, kemMLKEM768X25519, 32},
		{MLS192MLKEM768AES256GCMSHA384MLDSA65, kemMLKEM768, 64},
	} {
		s, err := Suite(tc.suite)
		if err != nil {
			t.Fatal(err)
		}
		if s.KEMID != tc.kem {
			t.Fatalf("%s: KEM %#04x, want %#04x", s.Name, s.KEMID, tc.kem)
		}
		priv, _, err := s.DeriveHPKEKeyPair(ikm)
		if err != nil {
			t.Fatal(err)
		}
		suiteID := binary.BigEndian.AppendUint16([]byte("KEM"), tc.kem)
		if want := shakeLabeledDerive(suiteID, ikm, "DeriveKeyPair", tc.nsk); !bytes.Equal(priv, want) {
			t.Errorf("%s: private key %x, want LabeledDerive output %x", s.Name, priv, want)
		}
		if tc.kem == kemMLKEM768X25519 {
			other := make([]byte, 32)
			h := sha3.NewSHAKE256()
			h.Write(ikm)
			h.Read(other)
			if bytes.Equal(priv, other) {
				t.Errorf("%s: private key is the X-Wing draft's SHAKE256(ikm)", s.Name)
			}
		}
	}
}
