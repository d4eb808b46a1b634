package mls

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// labelWelcomeHPKE is the EncryptWithLabel label of GroupSecrets (RFC 9420
// section 12.4.3.1).
const labelWelcomeHPKE = "Welcome"

// welcomeAEAD returns the AEAD and nonce that protect a Welcome's GroupInfo.
// The key is zeroed here; cipher.AEAD keeps its own expanded copy, which Go
// gives no way to clear.
func welcomeAEAD(s *CipherSuite, welcomeSecret []byte) (cipher.AEAD, []byte, error) {
	if s == nil {
		return nil, nil, errors.New("mls: no cipher suite")
	}
	key, nonce, err := s.WelcomeKeyNonce(welcomeSecret)
	if err != nil {
		return nil, nil, err
	}
	aead, err := s.AEAD(key)
	zero(key)
	if err != nil {
		return nil, nil, err
	}
	return aead, nonce, nil
}

// EncryptGroupInfo encrypts gi under the welcome key and nonce derived from
// welcomeSecret, with empty associated data, giving a Welcome's
// encrypted_group_info. The key and nonce are used once: each epoch has its
// own welcome secret.
func EncryptGroupInfo(s *CipherSuite, welcomeSecret []byte, gi *GroupInfo) ([]byte, error) {
	if gi == nil {
		return nil, errors.New("mls: missing GroupInfo")
	}
	aead, nonce, err := welcomeAEAD(s, welcomeSecret)
	if err != nil {
		return nil, err
	}
	var ct []byte
	err = withScratch(gi.MarshalMLS, func(pt []byte) error {
		ct = aead.Seal(nil, nonce, pt, nil)
		return nil
	})
	return ct, err
}

// DecryptGroupInfo decrypts and decodes a Welcome's encrypted_group_info.
// The signature and confirmation tag are not checked: that needs the
// ratchet tree and key schedule, which are the caller's.
func DecryptGroupInfo(s *CipherSuite, welcomeSecret, encryptedGroupInfo []byte) (*GroupInfo, error) {
	aead, nonce, err := welcomeAEAD(s, welcomeSecret)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, nonce, encryptedGroupInfo, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: Welcome GroupInfo", ErrDecrypt)
	}
	gi := new(GroupInfo)
	if err := wire.Unmarshal(pt, gi); err != nil {
		return nil, fmt.Errorf("mls: decoding Welcome GroupInfo: %w", err)
	}
	// The key that opened it belongs to s, so a GroupInfo naming another
	// suite is inconsistent (section 12.4.3.1 compares it with the
	// KeyPackage's, which the Welcome's must equal).
	if gi.GroupContext.CipherSuite != s.ID {
		return nil, fmt.Errorf("mls: Welcome GroupInfo is for cipher suite %#04x, not %s", uint16(gi.GroupContext.CipherSuite), s.Name)
	}
	return gi, nil
}

// EncryptGroupSecrets encrypts gs to a joiner's init key, bound to the
// Welcome's encrypted GroupInfo so that the secrets cannot be moved into
// another Welcome.
func EncryptGroupSecrets(s *CipherSuite, initKey []byte, gs *GroupSecrets, encryptedGroupInfo []byte) (HPKECiphertext, error) {
	if s == nil {
		return HPKECiphertext{}, errors.New("mls: no cipher suite")
	}
	if gs == nil {
		return HPKECiphertext{}, errors.New("mls: missing GroupSecrets")
	}
	pt, err := wire.Marshal(gs)
	defer zero(pt)
	if err != nil {
		return HPKECiphertext{}, err
	}
	kemOutput, ct, err := s.EncryptWithLabel(initKey, labelWelcomeHPKE, encryptedGroupInfo, pt)
	if err != nil {
		return HPKECiphertext{}, err
	}
	return HPKECiphertext{KEMOutput: kemOutput, Ciphertext: ct}, nil
}

// DecryptGroupSecrets opens a joiner's GroupSecrets with the private key of
// its KeyPackage's init key. The caller must Wipe the result when done.
func DecryptGroupSecrets(s *CipherSuite, initPriv []byte, ct *HPKECiphertext, encryptedGroupInfo []byte) (*GroupSecrets, error) {
	if s == nil {
		return nil, errors.New("mls: no cipher suite")
	}
	if ct == nil {
		return nil, errors.New("mls: missing encrypted GroupSecrets")
	}
	pt, err := s.DecryptWithLabel(initPriv, labelWelcomeHPKE, encryptedGroupInfo, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: Welcome GroupSecrets: %v", ErrDecrypt, err)
	}
	defer zero(pt)
	gs := new(GroupSecrets)
	if err := wire.Unmarshal(pt, gs); err != nil {
		gs.Wipe()
		return nil, fmt.Errorf("mls: decoding Welcome GroupSecrets: %w", err)
	}
	return gs, nil
}

// Wipe zeroes the secrets g holds.
func (g *GroupSecrets) Wipe() {
	if g == nil {
		return
	}
	zero(g.JoinerSecret)
	if g.PathSecret != nil {
		zero(g.PathSecret.PathSecret)
	}
}

// FindSecrets returns the entry of the Welcome encrypted to the KeyPackage
// with reference ref.
func (w *Welcome) FindSecrets(ref []byte) (*EncryptedGroupSecrets, bool) {
	if w == nil || len(ref) == 0 {
		return nil, false
	}
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			return &w.Secrets[i], true
		}
	}
	return nil, false
}
