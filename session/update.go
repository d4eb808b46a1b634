package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// errBadUpdate marks a ConnectionUpdate or EpochKeyUpdate that breaks the
// profile's rules or fails MLS validation.
var errBadUpdate = errors.New("session: bad update")

// Key switching. The two-party profile says when each party starts using a
// new epoch, but TLS stream records number themselves implicitly, so the
// receiver must also know at which record the sender switched. Each
// direction's switch is therefore marked in-band by an EpochKeyUpdate{e},
// the last record its sender protects under the old keys:
//
//   - the commit's receiver applies it and sends EpochKeyUpdate{e}: this
//     both confirms the commit (as the profile requires) and marks its own
//     switch;
//   - the committer, on that EpochKeyUpdate, merges its commit, switches its
//     receive keys, and answers with EpochKeyUpdate{e} to mark its own
//     switch. That answer is not a new update, so the rule that a waiting
//     party sends no ConnectionUpdate is untouched.

func (s *Session) sendUpdate() error {
	res, err := s.group.SelfUpdate()
	if err != nil {
		return err
	}
	if err := s.sendControl(&ConnectionUpdate{Commit: res.Commit}); err != nil {
		s.group.DiscardPendingCommit()
		return err
	}
	s.waiting = true
	s.nextUpdate = time.Time{}
	s.arm(false)
	return nil
}

func (s *Session) onConnectionUpdate(m *ConnectionUpdate) error {
	if s.waiting {
		if s.groupRole() == Initiator {
			// Collision: the initiator's commit wins, the responder will
			// discard its own when ours arrives.
			return nil
		}
		s.group.DiscardPendingCommit()
		s.waiting = false
	}
	if s.nextRecv != nil {
		return fmt.Errorf("%w: commit before the peer switched to epoch %d", errBadUpdate, s.nextRecv.Epoch())
	}
	rec, err := s.group.Process(m.Commit)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadUpdate, err)
	}
	if rec.Kind != mls.KindCommit || rec.Removed {
		return fmt.Errorf("%w: not a commit", errBadUpdate)
	}
	send, recv, err := s.deriveKeys()
	if err != nil {
		return err
	}
	epoch := s.group.Epoch()
	if err := s.sendControl(&EpochKeyUpdate{Epoch: epoch}); err != nil {
		send.Wipe()
		recv.Wipe()
		return err
	}
	if err := s.installSend(send); err != nil {
		recv.Wipe()
		return err
	}
	s.nextRecv = recv
	s.events = append(s.events, EpochChanged{Epoch: epoch})
	s.schedule()
	return nil
}

func (s *Session) onEpochKeyUpdate(m *EpochKeyUpdate) error {
	epoch := s.group.Epoch()
	// The marker ends its record (docs/protocol.md 7.7.1): whatever
	// followed it in the record was sealed under the keys it retires, and
	// would otherwise be taken as sent under the new ones.
	if s.hs.pending() {
		return fmt.Errorf("%w: bytes after EpochKeyUpdate in its record", errBadUpdate)
	}
	switch {
	case s.nextRecv != nil && m.Epoch == s.nextRecv.Epoch():
		// The peer marks the switch that follows our confirmation.
		k := s.nextRecv
		s.nextRecv = nil
		return s.reader.SetKeys(k)
	case s.waiting && s.nextRecv == nil && m.Epoch == epoch+1:
		return s.confirmed()
	}
	return fmt.Errorf("%w: EpochKeyUpdate for epoch %d at epoch %d", errBadUpdate, m.Epoch, epoch)
}

// confirmed: the peer applied our commit and switched. Merge, follow it on
// the receive side, and mark our own switch.
func (s *Session) confirmed() error {
	s.waiting = false
	if err := s.group.MergePendingCommit(); err != nil {
		return err
	}
	send, recv, err := s.deriveKeys()
	if err != nil {
		return err
	}
	if err := s.reader.SetKeys(recv); err != nil {
		send.Wipe()
		return err
	}
	epoch := s.group.Epoch()
	if err := s.sendControl(&EpochKeyUpdate{Epoch: epoch}); err != nil {
		send.Wipe()
		return err
	}
	if err := s.installSend(send); err != nil {
		return err
	}
	s.events = append(s.events, EpochChanged{Epoch: epoch})
	s.schedule()
	return nil
}

// Datagram mode. Datagram records carry their epoch, so no in-band marker
// is needed: each side installs the new receive keys next to the old ones
// (the record layer keeps the previous epoch for its grace period) and
// switches its send keys as soon as it may. What datagrams add is loss,
// duplication and reordering, handled as follows:
//
//   - the committer retransmits its ConnectionUpdate until the
//     EpochKeyUpdate arrives;
//   - the receiver answers a duplicate of the commit it applied last with
//     the same EpochKeyUpdate again, and changes nothing;
//   - a commit for another epoch than ours is dropped: an older one is a
//     stale duplicate, a newer one comes from a peer that already moved on
//     while our confirmation is still in flight, and will be retransmitted;
//   - an EpochKeyUpdate that confirms nothing we wait for is a duplicate
//     and dropped.

func (s *Session) dgConnectionUpdate(m *ConnectionUpdate, env []byte) error {
	h := sha256.Sum256(env)
	if s.dg.cuAnswer != nil && h == s.dg.cuHash {
		if s.dg.prevSend == nil {
			return drop("stale ConnectionUpdate")
		}
		return s.emitVia(s.dg.cuAnswer, s.dg.prevSend)
	}
	epoch := s.group.Epoch()
	if ce, ok := commitEpoch(m); !ok || ce != epoch {
		return drop("commit for epoch %d at epoch %d", ce, epoch)
	}
	if s.waiting {
		if s.groupRole() == Initiator {
			return drop("collision: the initiator's commit wins")
		}
		s.group.DiscardPendingCommit()
		s.waiting = false
		s.dg.rtx = nil
	}
	rec, err := s.group.Process(m.Commit)
	if err != nil {
		return fmt.Errorf("%w: %v", errBadUpdate, err)
	}
	if rec.Kind != mls.KindCommit || rec.Removed {
		return fmt.Errorf("%w: not a commit", errBadUpdate)
	}
	epoch = s.group.Epoch()
	// The confirmation goes out under the old keys, which the committer
	// still holds; then both directions move on.
	if err := s.sendControl(&EpochKeyUpdate{Epoch: epoch}); err != nil {
		return err
	}
	s.dg.cuHash, s.dg.cuAnswer = h, s.dg.last
	if err := s.dgInstall(); err != nil {
		return err
	}
	s.events = append(s.events, EpochChanged{Epoch: epoch})
	s.schedule()
	return nil
}

func (s *Session) dgEpochKeyUpdate(m *EpochKeyUpdate) error {
	epoch := s.group.Epoch()
	if !s.waiting || m.Epoch != epoch+1 {
		return drop("EpochKeyUpdate for epoch %d at epoch %d", m.Epoch, epoch)
	}
	s.waiting = false
	s.dg.rtx = nil
	if err := s.group.MergePendingCommit(); err != nil {
		return err
	}
	if err := s.dgInstall(); err != nil {
		return err
	}
	s.events = append(s.events, EpochChanged{Epoch: s.group.Epoch()})
	s.schedule()
	return nil
}

func commitEpoch(m *ConnectionUpdate) (uint64, bool) {
	return mlsEpoch(m.Commit)
}

func mlsEpoch(m *mls.MLSMessage) (uint64, bool) {
	switch {
	case m == nil:
	case m.PublicMessage != nil:
		return m.PublicMessage.Content.Epoch, true
	case m.PrivateMessage != nil:
		return m.PrivateMessage.Epoch, true
	}
	return 0, false
}
