package mls

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/current-vpn/current/session/mls/wire"
)

// MessageKeys is what one epoch needs to protect and unprotect framed
// messages (RFC 9420 sections 6.2 and 6.3): the group context, the
// membership key for PublicMessages, and the sender data secret and secret
// tree for PrivateMessages. It does not own these secrets; the epoch that
// holds it wipes them.
type MessageKeys struct {
	Suite            *CipherSuite
	Context          *GroupContext
	MembershipKey    []byte
	SenderDataSecret []byte
	Tree             *SecretTree

	// IsMember reports whether a leaf index names a non-blank leaf. The
	// RFC requires this check on decrypted sender data before any content
	// key is derived. Nil accepts every leaf the secret tree has.
	IsMember func(LeafIndex) bool
	// Rand supplies the reuse guards. Nil means crypto/rand.
	Rand io.Reader
}

func (k *MessageKeys) rand() io.Reader {
	if k.Rand != nil {
		return k.Rand
	}
	return rand.Reader
}

func (k *MessageKeys) checkGroupEpoch(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, k.Context.GroupID) {
		return ErrWrongGroup
	}
	if epoch != k.Context.Epoch {
		return fmt.Errorf("%w: got %d, in %d", ErrWrongEpoch, epoch, k.Context.Epoch)
	}
	return nil
}

// membershipTag is MAC(membership_key, AuthenticatedContentTBM).
func (k *MessageKeys) membershipTag(content *FramedContent, auth *FramedContentAuthData) ([]byte, error) {
	var tag []byte
	err := withScratch(func(w *wire.Writer) {
		marshalFramedContentTBS(w, WireFormatPublicMessage, content, k.Context)
		auth.MarshalMLSFor(w, content.ContentType)
	}, func(tbm []byte) error {
		tag = k.Suite.MAC(k.MembershipKey, tbm)
		return nil
	})
	return tag, err
}

// ProtectPublic encodes signed content as a PublicMessage, adding the
// membership tag when the sender is a member. Application data is refused:
// it must always be encrypted.
func (k *MessageKeys) ProtectPublic(ac *AuthenticatedContent) (*PublicMessage, error) {
	if ac.WireFormat != WireFormatPublicMessage {
		return nil, fmt.Errorf("mls: content was signed for wire format %d, not a PublicMessage", ac.WireFormat)
	}
	if ac.Content.ContentType == ContentTypeApplication {
		return nil, errApplicationInPublic
	}
	if err := k.checkGroupEpoch(ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return nil, err
	}
	pm := &PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.SenderType == SenderTypeMember {
		tag, err := k.membershipTag(&pm.Content, &pm.Auth)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = tag
	}
	return pm, nil
}

// UnprotectPublic checks a received PublicMessage's group, epoch and (for
// members) membership tag, and returns its content. The caller verifies the
// signature with VerifyContent, since only it knows the sender's key.
func (k *MessageKeys) UnprotectPublic(pm *PublicMessage) (*AuthenticatedContent, error) {
	if pm.Content.ContentType == ContentTypeApplication {
		return nil, errApplicationInPublic
	}
	if err := k.checkGroupEpoch(pm.Content.GroupID, pm.Content.Epoch); err != nil {
		return nil, err
	}
	if err := checkSenderContent(&pm.Content); err != nil {
		return nil, err
	}
	if pm.Content.Sender.SenderType == SenderTypeMember {
		if k.IsMember != nil && !k.IsMember(pm.Content.Sender.LeafIndex) {
			return nil, ErrUnknownSender
		}
		want, err := k.membershipTag(&pm.Content, &pm.Auth)
		if err != nil {
			return nil, err
		}
		if !hmac.Equal(want, pm.MembershipTag) {
			return nil, ErrBadMembershipTag
		}
	}
	return &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}, nil
}
