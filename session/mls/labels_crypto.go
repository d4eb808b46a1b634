package mls

import (
	"crypto/hpke"

	"github.com/current-vpn/current/session/mls/wire"
)

// labeledInput encodes struct { opaque label<V>; opaque data<V>; } with
// label = "MLS 1.0 " + label. SignContent (RFC 9420 section 5.1.2) and
// EncryptContext (section 5.1.3) share this shape; the prefix is what keeps
// MLS signatures and ciphertexts from being valid in any other protocol,
// and the label what keeps them from being valid in another MLS context.
func labeledInput(label string, data []byte) ([]byte, error) {
	w := wire.NewWriter(make([]byte, 0, 2*4+len(labelPrefix)+len(label)+len(data)))
	w.Opaque([]byte(labelPrefix + label))
	w.Opaque(data)
	return w.Bytes()
}

// withLabeled encodes SignContent{"MLS 1.0 "+label, content}, the content
// written by marshal in place (no copy of it), into a scratch buffer, and
// hands the encoding to use, which must not keep it. The bytes are those
// of labeledInput(label, encoding of content).
func withLabeled(label string, marshal func(*wire.Writer), use func(tbs []byte) error) error {
	return withScratch(func(w *wire.Writer) {
		w.Opaque([]byte(labelPrefix + label))
		w.Vector(marshal)
	}, use)
}

// signLabeled is signWithLabel of the content marshal writes.
func (k *signingKey) signLabeled(label string, marshal func(*wire.Writer)) (sig []byte, err error) {
	err = withLabeled(label, marshal, func(tbs []byte) error {
		sig, err = k.sign(tbs)
		return err
	})
	return sig, err
}

// verifyLabeled is VerifyWithLabel of the content marshal writes; with
// once, for a signature nobody will ask about again (CheckedKeyPackage),
// the cache of verified signatures is neither asked nor told, which
// spares hashing the whole signed content for it.
func (s *CipherSuite) verifyLabeled(pub []byte, label string, marshal func(*wire.Writer), sig []byte, once bool) error {
	return withLabeled(label, marshal, func(tbs []byte) error {
		if once {
			return s.Verify(pub, tbs, sig)
		}
		return s.verifyTBS(pub, tbs, sig)
	})
}

// SignWithLabel is Signature.Sign(priv, SignContent{"MLS 1.0 "+label, content}).
func (s *CipherSuite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	tbs, err := labeledInput(label, content)
	if err != nil {
		return nil, err
	}
	return s.Sign(priv, tbs)
}

// signWithLabel is SignWithLabel with a parsed key.
func (k *signingKey) signWithLabel(label string, content []byte) ([]byte, error) {
	tbs, err := labeledInput(label, content)
	if err != nil {
		return nil, err
	}
	return k.sign(tbs)
}

// VerifyWithLabel is Signature.Verify(pub, SignContent{"MLS 1.0 "+label, content}, sig).
func (s *CipherSuite) VerifyWithLabel(pub []byte, label string, content, sig []byte) error {
	tbs, err := labeledInput(label, content)
	if err != nil {
		return err
	}
	return s.verifyTBS(pub, tbs, sig)
}

// verifyTBS verifies sig over the encoded SignContent tbs. Identical bytes
// verified before give the same answer (verifiedCache).
func (s *CipherSuite) verifyTBS(pub, tbs, sig []byte) error {
	k := verifiedDigest(kindSignature, s.ID, pub, tbs, sig)
	if isVerified(k) {
		return nil
	}
	if err := s.Verify(pub, tbs, sig); err != nil {
		return err
	}
	rememberVerified(k)
	return nil
}

// EncryptWithLabel is SealBase(pub, EncryptContext{"MLS 1.0 "+label, context}, "", plaintext).
func (s *CipherSuite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	info, err := labeledInput(label, context)
	if err != nil {
		return nil, nil, err
	}
	return s.SealBase(pub, info, nil, plaintext)
}

// DecryptWithLabel is OpenBase(kemOutput, priv, EncryptContext{"MLS 1.0 "+label, context}, "", ciphertext).
func (s *CipherSuite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	return s.decryptWithLabel(priv, nil, label, context, kemOutput, ciphertext)
}

// decryptWithLabel is DecryptWithLabel with priv, if sk is not nil,
// already parsed.
func (s *CipherSuite) decryptWithLabel(priv []byte, sk hpke.PrivateKey, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	info, err := labeledInput(label, context)
	if err != nil {
		return nil, err
	}
	return s.openBase(kemOutput, priv, sk, info, nil, ciphertext)
}
