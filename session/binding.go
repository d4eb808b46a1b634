package session

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/current-vpn/current/session/mls"
)

// ExtCurrentSession is the private-use GroupContext extension that marks a
// group as a CURRENT session. Its content is the session protocol version:
//
//	struct { uint16 version; } CurrentSession;
//
// The responder creates every group with it; both leaves list the type in
// their capabilities (RFC 9420 section 12.1.1 requires every member to
// support a group context extension), and the initiator refuses a group
// without it or with another version. Being part of the GroupContext, it is
// signed into every handshake message and feeds the key schedule, so a group
// made for another protocol or version cannot be passed off as ours.
const ExtCurrentSession mls.ExtensionType = 0xF0C1

// groupIDLen is the length of the random group ID, so that two sessions
// never share one.
const groupIDLen = 16

// ErrNotCurrentGroup: the responder's group is not bound to this protocol.
var ErrNotCurrentGroup = errors.New("session: group is not a CURRENT session of this version")

func newGroupID(rand io.Reader) ([]byte, error) {
	id := make([]byte, groupIDLen)
	if _, err := io.ReadFull(rand, id); err != nil {
		return nil, err
	}
	return id, nil
}

// bindingExtensions are the group context extensions of a new group.
func bindingExtensions() mls.Extensions {
	return mls.Extensions{{Type: ExtCurrentSession, Data: binary.BigEndian.AppendUint16(nil, ProtocolVersion)}}
}

// leafCapabilities are our leaf's capabilities: the engine's defaults plus
// the CURRENT extension.
func leafCapabilities() *mls.Capabilities {
	c := mls.DefaultCapabilities()
	c.Extensions = append(c.Extensions, ExtCurrentSession)
	return &c
}

func checkBinding(ctx *mls.GroupContext) error {
	data, ok := ctx.Extensions.Find(ExtCurrentSession)
	if !ok {
		return ErrNotCurrentGroup
	}
	if len(data) != 2 {
		return fmt.Errorf("%w: extension of %d bytes", ErrNotCurrentGroup, len(data))
	}
	if v := binary.BigEndian.Uint16(data); v != ProtocolVersion {
		return fmt.Errorf("%w: version %d", ErrNotCurrentGroup, v)
	}
	return nil
}

// pinnedCredentials admits exactly the two pinned signature keys, so that a
// commit cannot swap either member's key for one we never agreed to.
type pinnedCredentials struct{ own, peer []byte }

// ErrCredentialIdentity: a basic credential whose identity is not its
// leaf's signature key (docs/protocol.md 7.3). The pin authenticates the
// key, so an identity that says something else would be a claim nobody
// checked; such a credential is refused rather than trusted.
var ErrCredentialIdentity = errors.New("session: basic credential identity is not the leaf's signature key")

func (p pinnedCredentials) ValidateCredential(s *mls.CipherSuite, cred *mls.Credential, key []byte) error {
	if err := (mls.BasicCredentials{}).ValidateCredential(s, cred, key); err != nil {
		return err
	}
	if !sameKey(key, p.own) && !sameKey(key, p.peer) {
		return ErrUnknownPeer
	}
	if !bytes.Equal(cred.Identity, key) {
		return ErrCredentialIdentity
	}
	return nil
}

func sameKey(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
