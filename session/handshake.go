package session

import (
	"fmt"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
)

func (s *Session) credential() mls.Credential {
	return mls.Credential{CredentialType: mls.CredentialBasic, Identity: s.ownPub}
}

func (s *Session) groupConfig() mls.GroupConfig {
	return mls.GroupConfig{
		Credentials: s.pinned(),
		Now:         s.clock,
		// Any lifetime that covers now (docs/protocol.md 7.3): a
		// KeyPackage here is made for one ClientHello and never stored,
		// so a bound on its span protects nothing, and common MLS stacks
		// default to spans far beyond any bound we could pick.
		MaxLeafLifetime: anyLifetime,
		// Both leaves list the CURRENT extension: the creator's here, the
		// joiner's in its KeyPackage (sendClientHello).
		LeafCapabilities: leafCapabilities(),
	}
}

// pinned accepts the credentials of our key and the pinned peer's.
func (s *Session) pinned() pinnedCredentials {
	return pinnedCredentials{own: s.ownPub, peer: s.cfg.PeerPublicKey}
}

func (s *Session) sendClientHello() error {
	kp, initPriv, encPriv, err := mls.NewKeyPackage(s.suite, s.cfg.SigningKey, s.credential(), mls.KeyPackageOptions{Now: s.now, Capabilities: leafCapabilities()})
	if err != nil {
		return err
	}
	s.kp = kp
	s.kpSecrets = &mls.KeyPackageSecrets{InitPriv: initPriv, EncryptionPriv: encPriv, SignaturePriv: append([]byte(nil), s.cfg.SigningKey...)}
	env, err := EncodeControl(&ClientHello{KeyPackage: &mls.MLSMessage{Version: mls.ProtocolMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kp}})
	if err != nil {
		return err
	}
	if err := s.sendHello(MsgClientHello, env); err != nil {
		return err
	}
	s.arm(false)
	return nil
}

// onClientHello is the responder's half of the handshake.
func (s *Session) onClientHello(m *ClientHello) error {
	kp, err := s.checkClientHello(m)
	if err != nil {
		return err
	}
	return s.answerClientHello(kp)
}

// checkClientHello checks that the KeyPackage is the pinned peer's, of our
// suite, and valid. The pinned-key comparison comes first: a stranger must
// not be able to make us spend a signature verification or HPKE
// operation, nor learn anything from a reply. The checked KeyPackage is
// what the group is made with (answerClientHello), which then need not
// verify its signatures again.
func (s *Session) checkClientHello(m *ClientHello) (*mls.CheckedKeyPackage, error) {
	kp := m.KeyPackage.KeyPackage
	if kp == nil || !sameKey(kp.LeafNode.SignatureKey, s.cfg.PeerPublicKey) {
		return nil, ErrUnknownPeer
	}
	if kp.CipherSuite != s.suite.ID {
		return nil, fmt.Errorf("%w: %w: offered %#04x", ErrBadKeyPackage, ErrSuiteMismatch, uint16(kp.CipherSuite))
	}
	// groupConfig's lifetime bound and credentials, without the
	// capabilities it would build for our own leaf.
	check := mls.LeafNodeCheck{Suite: s.suite, Now: s.now, MaxLifetime: anyLifetime, Credentials: s.pinned()}
	checked, err := kp.Check(&check)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKeyPackage, err)
	}
	return checked, nil
}

// anyLifetime accepts a KeyPackage lifetime of any span (mls.LeafNodeCheck).
const anyLifetime = -1

// answerClientHello creates the group with the peer's checked KeyPackage
// and answers ServerHello.
func (s *Session) answerClientHello(kp *mls.CheckedKeyPackage) error {
	cfg := s.groupConfig()
	id, err := newGroupID(s.cfg.Rand)
	if err != nil {
		return err
	}
	// No UpdatePath (docs/protocol.md 7.7): the group and our leaf's keys
	// are a moment old, so a path would add two key derivations and a
	// signature to every handshake and no secrecy. The initiator is the
	// only member added and learns everything from the Welcome, so the
	// commit is never framed, and nobody uses epoch 0 but to commit from.
	g, welcome, err := mls.NewGroupWithMember(s.suite, id, s.cfg.SigningKey, s.credential(), s.groupExtensions(), cfg, kp)
	if err != nil {
		return err
	}
	s.group = g
	if err := s.sendControl(&ServerHello{Welcome: welcome}); err != nil {
		return err
	}
	return s.establish()
}

// onServerHello is the initiator's half: join, then make sure the group is
// a CURRENT session with exactly the pinned responder in it.
func (s *Session) onServerHello(m *ServerHello) error {
	g, err := mls.JoinFromWelcome(m.Welcome, s.kp, s.kpSecrets, nil, s.groupConfig())
	if err != nil {
		return err
	}
	if err := checkGroup(g, s.suite.ID, s.cfg.PeerPublicKey); err != nil {
		g.Close()
		return err
	}
	s.group, s.kp = g, nil
	s.kpSecrets.Wipe()
	s.kpSecrets = nil
	return s.establish()
}

// checkGroup makes sure g is a CURRENT session in our suite with exactly
// the pinned peer in it besides us.
func checkGroup(g *mls.Group, suite mls.CipherSuiteID, pin []byte) error {
	ctx := g.Context()
	if err := checkBinding(&ctx); err != nil {
		return err
	}
	if ctx.CipherSuite != suite {
		return ErrSuiteMismatch
	}
	members := g.Members()
	if len(members) != 2 {
		return fmt.Errorf("%w: group of %d members", ErrUnexpectedMessage, len(members))
	}
	peer := members[0]
	if peer == g.OwnLeaf() {
		peer = members[1]
	}
	if l := g.Member(peer); l == nil || !sameKey(l.SignatureKey, pin) {
		return ErrUnknownPeer
	}
	return nil
}

// establish installs both directions' keys of the group's epoch.
func (s *Session) establish() error {
	if s.cfg.Transport == Datagram {
		if err := s.dgInstall(); err != nil {
			return err
		}
	} else {
		send, recv, err := s.deriveKeys()
		if err != nil {
			return err
		}
		if err := s.installSend(send); err != nil {
			recv.Wipe()
			return err
		}
		if err := s.reader.SetKeys(recv); err != nil {
			return err
		}
		s.recvKeyed = true
	}
	s.phase = phaseEstablished
	s.events = append(s.events, Established{Epoch: s.group.Epoch()})
	s.schedule()
	return nil
}

func (s *Session) deriveKeys() (send, recv *record.TrafficKeys, err error) {
	role := record.Initiator
	if s.groupRole() == Responder {
		role = record.Responder
	}
	return record.DeriveEpochKeys(s.rsuite, s.group, s.group.Epoch(), role)
}

// groupRole is our role in the handshake that created the group: the
// responder created it (leaf 0) and added the initiator (leaf 1), so the
// group records it for its whole life, across persistence and resumption.
// Record keys (docs/protocol.md, section 2 and 7.3) and the commit
// collision rule follow it, not s.cfg.Role: a resumption's roles need not
// be the handshake's, since the side that restarts sends the
// ResumptionRequest whatever its role was. With s.cfg.Role, a restarted
// former responder and its established peer (the former initiator) would
// both send with the initiator's keys and could open nothing of each
// other's, and would both win every commit collision.
func (s *Session) groupRole() Role {
	if s.group.OwnLeaf() == 0 {
		return Responder
	}
	return Initiator
}

func (s *Session) installSend(k *record.TrafficKeys) error {
	if err := s.writer.SetKeys(k); err != nil {
		k.Wipe()
		return err
	}
	return nil
}

// PreferOutgoing resolves a simultaneous open in stream mode, where two
// crossing dials make two connections, each with its own initiator and
// responder Session. Given our and the peer's signature public keys, it
// reports whether to keep the connection we dialled (where we are the
// initiator) and close the one we accepted. Both sides compute the same
// answer: the side with the bytewise lower key stays initiator, the rule
// datagram mode applies inside the Session.
func PreferOutgoing(ownPublicKey, peerPublicKey []byte) bool {
	return compareKeys(ownPublicKey, peerPublicKey) < 0
}
