package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
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
	if s.dg.nextSend != nil {
		// Our old epoch's records may still be in flight: a commit now
		// would make the peer install a third epoch, which wipes the
		// keys that open them. It goes out once the peer switched.
		s.dg.updateDue = true
		return nil
	}
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
// (the record layer keeps the previous epoch for its grace period). What
// datagrams add is loss, duplication and reordering, handled as follows:
//
//   - the committer retransmits its ConnectionUpdate until the
//     EpochKeyUpdate arrives;
//   - the receiver answers a duplicate of the commit it applied last with
//     the same EpochKeyUpdate again, and changes nothing;
//   - a commit for another epoch than ours is dropped: an older one is a
//     stale duplicate, a newer one comes from a peer that already moved on
//     while our confirmation is still in flight, and will be retransmitted;
//   - an EpochKeyUpdate that confirms nothing we wait for is a duplicate
//     and dropped, except one for our current epoch: the peer still holds
//     back its switch (below) and gets a keepalive.
//
// Nothing sent may arrive before the keys to open it (issue 17: every
// such record is a lost packet). The commit's receiver holds the new
// epoch's send keys back (dg.nextSend) and goes on sealing under the old
// ones until a record of the new epoch from the peer authenticates: its
// EpochKeyUpdate may be lost, or overtaken by the records sealed after it,
// and until it arrives the committer can open only the old epoch. The
// committer switches both directions on the EpochKeyUpdate and at once
// sends a keepalive under the new keys (an empty packet, which callers
// ignore), so that the receiver switches even when no data flows its way.
// The keepalive may be lost too, so the receiver retransmits its
// EpochKeyUpdate while it holds, and after GiveUp switches anyway
// (endHold). Until then the receiver starts no update of its own: its old
// epoch's records in flight would meet a third epoch at the committer,
// which holds two.

func (s *Session) dgConnectionUpdate(m *ConnectionUpdate, env []byte) error {
	h := sha256.Sum256(env)
	if s.dg.cuAnswer != nil && h == s.dg.cuHash {
		old := s.oldSend()
		if old == nil {
			return drop("stale ConnectionUpdate")
		}
		return s.emitVia(s.dg.cuAnswer, old)
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
	s.holdSend()
	s.arm(false)
	s.dg.rtx.hold = true
	s.events = append(s.events, EpochChanged{Epoch: epoch})
	s.schedule()
	return nil
}

func (s *Session) dgEpochKeyUpdate(m *EpochKeyUpdate) error {
	epoch := s.group.Epoch()
	if !s.waiting && m.Epoch == epoch {
		// The peer retransmits its confirmation while it holds back
		// its switch (holdSend): our keepalive of the switch was lost,
		// and nothing else of ours reached it under the new keys.
		return s.sealKeepalive()
	}
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
	// A keepalive under the new keys shows the peer that we switched,
	// so that it stops holding back its own switch (above) even when we
	// have nothing to send.
	if err := s.sealKeepalive(); err != nil {
		return err
	}
	s.events = append(s.events, EpochChanged{Epoch: s.group.Epoch()})
	s.schedule()
	return nil
}

// sealKeepalive queues an empty application-data record under the
// current send keys; receivers ignore its (empty) packet.
func (s *Session) sealKeepalive() error {
	ka, err := s.dg.send.Seal(nil, record.ContentApplicationData, nil, 0)
	if err != nil {
		return err
	}
	s.out = append(s.out, ka)
	return nil
}

// holdSend undoes the send half of dgInstall until the peer proves it
// holds the new epoch (peerSwitched): the new sender waits in nextSend
// and the old one goes on sealing. The caller arms the retransmission of
// the confirmation, which bounds the hold (endHold).
func (s *Session) holdSend() {
	s.dg.nextSend, s.dg.send, s.dg.prevSend = s.dg.send, s.dg.prevSend, nil
}

// peerSwitched: a record of the peer's authenticated under our current
// epoch. The old epoch's send keys have served their purpose: the held
// ones take over, and those kept for a duplicate ConnectionUpdate go.
func (s *Session) peerSwitched() {
	if s.dg.prevSend != nil {
		s.dg.prevSend.Close()
		s.dg.prevSend = nil
	}
	if s.dg.nextSend != nil {
		s.endHold()
	}
}

// endHold switches our send keys to the held ones: the peer proved it
// has the epoch (peerSwitched), or our confirmation's retransmission gave
// up (onTimers). By then the committer, whose ConnectionUpdate went out
// before we received it and is retransmitted for at most GiveUp, has
// either received one of our confirmations or closed its session, so no
// record of ours is sealed for keys the peer lacks. An update asked for
// while we held back starts soon after.
func (s *Session) endHold() {
	s.dg.send.Close()
	s.dg.send, s.dg.nextSend = s.dg.nextSend, nil
	if s.dg.rtx != nil && s.dg.rtx.hold {
		s.dg.rtx = nil
	}
	// Not at once: our records of the epoch before may still be in
	// flight behind the commit (see sendUpdate), for as long as the
	// network reorders. RetransmitMin is what the protocol already
	// allows for a round trip. This also holds back an update that the
	// schedule made due while we held.
	soon := s.now.Add(s.cfg.RetransmitMin)
	if s.dg.updateDue || (!s.nextUpdate.IsZero() && s.nextUpdate.Before(soon)) {
		s.nextUpdate = soon
	}
	s.dg.updateDue = false
}

// holding reports that we hold back our switch to the current epoch.
func (s *Session) holding() bool { return s.dg.nextSend != nil }

// oldSend is the sender of the epoch before the current one, if still
// held: the one that answers a duplicate ConnectionUpdate.
func (s *Session) oldSend() *record.DatagramSender {
	if s.dg.nextSend != nil {
		return s.dg.send
	}
	return s.dg.prevSend
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
