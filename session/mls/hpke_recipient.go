package mls

import "crypto/hpke"

// HPKERecipient is an HPKE private key parsed once, for a key that opens
// many ciphertexts (a responder's long-lived hello key). Parsing is not
// free: an X-Wing or ML-KEM-768 key is expanded from its seed, a DHKEM key
// derives its public key for the KEM context. It is safe for concurrent
// use: the parsed key is never modified. Like every parsed key of
// crypto/hpke it cannot be zeroed; dropping it leaves it to the garbage
// collector.
type HPKERecipient struct {
	s    *CipherSuite
	priv []byte          // kept only for the KEMs crypto/hpke does not serve (X448)
	sk   hpke.PrivateKey // nil for X448
}

// NewHPKERecipient parses priv (SerializePrivateKey form) once.
func (s *CipherSuite) NewHPKERecipient(priv []byte) (r *HPKERecipient, err error) {
	defer recoverAsError(&err, "HPKE key import")
	if s.KEMID == kemDHKEMX448 {
		return &HPKERecipient{s: s, priv: append([]byte(nil), priv...)}, nil
	}
	kem, ok := s.stdKEM()
	if !ok {
		return nil, s.errUnsupportedKEM()
	}
	sk, err := s.stdPrivateKey(kem, priv)
	if err != nil {
		return nil, err
	}
	return &HPKERecipient{s: s, sk: sk}, nil
}

// OpenBase is CipherSuite.OpenBase with the parsed key.
func (r *HPKERecipient) OpenBase(kemOutput, info, aad, ciphertext []byte) ([]byte, error) {
	return r.s.openBase(kemOutput, r.priv, r.sk, info, aad, ciphertext)
}
