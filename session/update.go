package session

import (
	"errors"
	"fmt"

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
	return nil
}

func (s *Session) onConnectionUpdate(m *ConnectionUpdate) error {
	if s.waiting {
		if s.cfg.Role == Initiator {
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
	return nil
}

func (s *Session) onEpochKeyUpdate(m *EpochKeyUpdate) error {
	epoch := s.group.Epoch()
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
	return nil
}
