package mls

import (
	"fmt"
	"io"

	"github.com/current-vpn/current/session/mls/wire"
)

func ratchetFor(ct ContentType) RatchetType {
	if ct == ContentTypeApplication {
		return ApplicationRatchet
	}
	return HandshakeRatchet
}

// privateContentAAD encodes PrivateContentAAD, the AAD of the content
// ciphertext.
func privateContentAAD(groupID []byte, epoch uint64, ct ContentType, authenticatedData []byte) ([]byte, error) {
	w := wire.NewWriter(nil)
	w.Opaque(groupID)
	w.U64(epoch)
	w.U8(uint8(ct))
	w.Opaque(authenticatedData)
	return w.Bytes()
}

// senderDataAAD encodes SenderDataAAD, the AAD of the sender data
// ciphertext.
func senderDataAAD(groupID []byte, epoch uint64, ct ContentType) ([]byte, error) {
	w := wire.NewWriter(nil)
	w.Opaque(groupID)
	w.U64(epoch)
	w.U8(uint8(ct))
	return w.Bytes()
}

// applyReuseGuard XORs the guard into the first four bytes of the nonce.
func applyReuseGuard(nonce []byte, guard [4]byte) {
	for i := range guard {
		nonce[i] ^= guard[i]
	}
}

// ProtectPrivate encrypts signed content from a member as a PrivateMessage
// under the next key of the sender's ratchet, appending padding zero bytes
// to hide the content length.
func (k *MessageKeys) ProtectPrivate(ac *AuthenticatedContent, padding int) (*PrivateMessage, error) {
	c := &ac.Content
	if ac.WireFormat != WireFormatPrivateMessage {
		return nil, fmt.Errorf("mls: content was signed for wire format %d, not a PrivateMessage", ac.WireFormat)
	}
	if c.Sender.SenderType != SenderTypeMember {
		return nil, fmt.Errorf("mls: only members can send PrivateMessages")
	}
	if err := k.checkGroupEpoch(c.GroupID, c.Epoch); err != nil {
		return nil, err
	}
	plaintext, err := wire.Marshal(&PrivateMessageContent{
		ContentType:     c.ContentType,
		ApplicationData: c.ApplicationData,
		Proposal:        c.Proposal,
		Commit:          c.Commit,
		Auth:            ac.Auth,
		Padding:         padding,
	})
	if err != nil {
		return nil, err
	}
	defer zero(plaintext)

	var sd SenderData
	sd.LeafIndex = c.Sender.LeafIndex
	if _, err := io.ReadFull(k.rand(), sd.ReuseGuard[:]); err != nil {
		return nil, fmt.Errorf("mls: reading reuse guard: %w", err)
	}
	gen, key, nonce, err := k.Tree.Next(uint32(sd.LeafIndex), ratchetFor(c.ContentType))
	if err != nil {
		return nil, err
	}
	defer zeroAll(key, nonce)
	sd.Generation = gen
	applyReuseGuard(nonce, sd.ReuseGuard)

	pm := &PrivateMessage{
		GroupID:           c.GroupID,
		Epoch:             c.Epoch,
		ContentType:       c.ContentType,
		AuthenticatedData: c.AuthenticatedData,
	}
	aad, err := privateContentAAD(pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData)
	if err != nil {
		return nil, err
	}
	aead, err := k.Suite.AEAD(key)
	if err != nil {
		return nil, err
	}
	pm.Ciphertext = aead.Seal(nil, nonce, plaintext, aad)

	sdKey, sdNonce, err := SenderDataKeyNonce(k.Suite, k.SenderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	defer zeroAll(sdKey, sdNonce)
	sdAEAD, err := k.Suite.AEAD(sdKey)
	if err != nil {
		return nil, err
	}
	sdPlain, err := wire.Marshal(&sd)
	if err != nil {
		return nil, err
	}
	sdAAD, err := senderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if err != nil {
		return nil, err
	}
	pm.EncryptedSenderData = sdAEAD.Seal(nil, sdNonce, sdPlain, sdAAD)
	return pm, nil
}

// UnprotectPrivate decrypts a PrivateMessage and consumes its message key
// at once, so the same message cannot be decrypted twice. The caller
// verifies the returned content's signature with VerifyContent.
func (k *MessageKeys) UnprotectPrivate(pm *PrivateMessage) (*AuthenticatedContent, error) {
	ac, consume, err := k.UnprotectPrivateDeferred(pm)
	if err != nil {
		return nil, err
	}
	if err := consume(); err != nil {
		return nil, err
	}
	return ac, nil
}

// UnprotectPrivateDeferred decrypts a PrivateMessage without consuming its
// message key: first the sender data, to learn the sender and generation,
// then the content under a peeked ratchet key. The caller calls consume once
// it has accepted the message (signature verified, commit applied), which
// deletes the key; a message rejected before that leaves the key in place
// for the genuine copy or a retry.
func (k *MessageKeys) UnprotectPrivateDeferred(pm *PrivateMessage) (ac *AuthenticatedContent, consume func() error, err error) {
	if err := k.checkGroupEpoch(pm.GroupID, pm.Epoch); err != nil {
		return nil, nil, err
	}
	if !pm.ContentType.valid() {
		return nil, nil, fmt.Errorf("mls: invalid PrivateMessage content type %d", pm.ContentType)
	}
	sdKey, sdNonce, err := SenderDataKeyNonce(k.Suite, k.SenderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, nil, err
	}
	defer zeroAll(sdKey, sdNonce)
	sdAEAD, err := k.Suite.AEAD(sdKey)
	if err != nil {
		return nil, nil, err
	}
	sdAAD, err := senderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if err != nil {
		return nil, nil, err
	}
	sdPlain, err := sdAEAD.Open(nil, sdNonce, pm.EncryptedSenderData, sdAAD)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: sender data", ErrDecrypt)
	}
	var sd SenderData
	if err := wire.Unmarshal(sdPlain, &sd); err != nil {
		return nil, nil, fmt.Errorf("mls: malformed sender data: %w", err)
	}
	if k.IsMember != nil && !k.IsMember(sd.LeafIndex) {
		return nil, nil, ErrUnknownSender
	}

	typ := ratchetFor(pm.ContentType)
	key, nonce, err := k.Tree.Peek(uint32(sd.LeafIndex), typ, sd.Generation)
	if err != nil {
		return nil, nil, err
	}
	defer zeroAll(key, nonce)
	applyReuseGuard(nonce, sd.ReuseGuard)
	aead, err := k.Suite.AEAD(key)
	if err != nil {
		return nil, nil, err
	}
	aad, err := privateContentAAD(pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData)
	if err != nil {
		return nil, nil, err
	}
	plaintext, err := aead.Open(nil, nonce, pm.Ciphertext, aad)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: content", ErrDecrypt)
	}
	defer zero(plaintext)
	content, err := UnmarshalPrivateMessageContent(plaintext, pm.ContentType)
	if err != nil {
		return nil, nil, err
	}
	tree := k.Tree
	consume = func() error {
		key, nonce, err := tree.Get(uint32(sd.LeafIndex), typ, sd.Generation)
		zeroAll(key, nonce)
		return err
	}
	return &AuthenticatedContent{
		WireFormat: WireFormatPrivateMessage,
		Content: FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            Sender{SenderType: SenderTypeMember, LeafIndex: sd.LeafIndex},
			AuthenticatedData: pm.AuthenticatedData,
			ContentType:       pm.ContentType,
			ApplicationData:   content.ApplicationData,
			Proposal:          content.Proposal,
			Commit:            content.Commit,
		},
		Auth: content.Auth,
	}, consume, nil
}
