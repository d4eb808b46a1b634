package mls

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// AEAD returns the suite's AEAD keyed with key.
func (s *CipherSuite) AEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != s.KeySize {
		return nil, fmt.Errorf("mls: AEAD key is %d bytes, want %d", len(key), s.KeySize)
	}
	switch s.AEADID {
	case aeadAES128GCM, aeadAES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case aeadChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("mls: unsupported AEAD %#04x", s.AEADID)
}
