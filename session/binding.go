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

// ExtCurrentSession is the private-use GroupContext extension type meant to
// mark a group as a CURRENT session of a given protocol version.
//
// The MLS engine cannot carry it yet: NewGroup requires the creator's leaf to
// list every non-default group extension in its capabilities, and the leaf's
// capabilities are fixed to DefaultCapabilities with no way to extend them.
// Until the engine grows that option, the same binding lives in the group ID
// (bindingPrefix below), which is equally part of the GroupContext: it is
// signed into every handshake message and feeds the key schedule, so a group
// made for another protocol or version cannot be passed off as ours.
const ExtCurrentSession mls.ExtensionType = 0xF0C1

// bindingPrefix starts every group ID; the protocol version follows it, then
// groupIDRandom random bytes so that two sessions never share a group ID.
const (
	bindingPrefix = "CURRENT"
	groupIDRandom = 16
)

// ErrNotCurrentGroup: the responder's group is not bound to this protocol.
var ErrNotCurrentGroup = errors.New("session: group is not a CURRENT session of this version")

func newGroupID(rand io.Reader) ([]byte, error) {
	id := make([]byte, len(bindingPrefix)+2+groupIDRandom)
	copy(id, bindingPrefix)
	binary.BigEndian.PutUint16(id[len(bindingPrefix):], ProtocolVersion)
	if _, err := io.ReadFull(rand, id[len(bindingPrefix)+2:]); err != nil {
		return nil, err
	}
	return id, nil
}

func checkBinding(ctx *mls.GroupContext) error {
	id := ctx.GroupID
	if len(id) != len(bindingPrefix)+2+groupIDRandom || !bytes.HasPrefix(id, []byte(bindingPrefix)) {
		return ErrNotCurrentGroup
	}
	if v := binary.BigEndian.Uint16(id[len(bindingPrefix):]); v != ProtocolVersion {
		return fmt.Errorf("%w: version %d", ErrNotCurrentGroup, v)
	}
	return nil
}

// pinnedCredentials admits exactly the two pinned signature keys, so that a
// commit cannot swap either member's key for one we never agreed to.
type pinnedCredentials struct{ own, peer []byte }

func (p pinnedCredentials) ValidateCredential(s *mls.CipherSuite, cred *mls.Credential, key []byte) error {
	if err := (mls.BasicCredentials{}).ValidateCredential(s, cred, key); err != nil {
		return err
	}
	if !sameKey(key, p.own) && !sameKey(key, p.peer) {
		return ErrUnknownPeer
	}
	return nil
}

func sameKey(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
