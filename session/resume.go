package session

import (
	"crypto/sha256"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// Resumption (draft-kohbrok-mls-two-party-profile, Phase 3), both modes.
// A peer that restarts with a group it persisted cannot reuse that epoch's
// record keys: it does not know which sequence numbers it already used, and
// nonce reuse is fatal. So both sides move the group forward before any
// data flows:
//
//  1. the initiator (the resuming side) commits a self-update from the
//     persisted epoch e and sends it in a ResumptionRequest;
//  2. the responder applies it (epoch e+1), commits its own self-update
//     and merges it at once (epoch e+2), and answers ResumptionResponse;
//  3. the initiator merges its commit, applies the responder's, and both
//     install the keys of epoch e+2, which nobody has used before.
//
// Both messages are plaintext control datagrams: the commits are signed
// PublicMessages carrying a membership tag of their epoch, so only the two
// members can produce them. A duplicate request gets the cached response.
// A responder without the group, or at another epoch, drops the request;
// the initiator then falls back to a fresh handshake after ResumeTimeout.
//
// Stream mode (a TCP reconnect): both sides are new Sessions restored with
// Config.Resume on a new connection, and the two messages are the
// plaintext records of section 7's framing. A responder that cannot
// resume ignores the request and keeps waiting; the initiator falls back
// after ResumeTimeout by sending a ClientHello on the same connection, so
// the responder then reads two plaintext messages. An answer that arrives
// after the fallback is a fatal protocol error (the caller reconnects).

// startResume restores the persisted group and, as initiator, sends the
// ResumptionRequest. A state that cannot be restored falls back to a fresh
// handshake at once.
func (s *Session) startResume() error {
	state := s.cfg.Resume
	s.cfg.Resume = nil
	defer clear(state)
	g, err := mls.UnmarshalGroup(state, s.groupConfig())
	if err == nil {
		if err = checkGroup(g, s.suite.ID, s.cfg.PeerPublicKey); err != nil {
			g.Close()
		}
	}
	if err != nil {
		if s.cfg.Role == Initiator {
			return s.sendClientHello()
		}
		return nil
	}
	s.group = g
	s.dg.resuming = true
	if s.cfg.Role == Responder {
		return nil
	}
	res, err := g.SelfUpdate()
	if err != nil {
		return err
	}
	if err := s.sendControl(&ResumptionRequest{Commit: res.Commit}); err != nil {
		return err
	}
	s.arm(true)
	return nil
}

// resumeFallback gives up on resumption and starts a fresh handshake.
func (s *Session) resumeFallback() error {
	if s.group != nil {
		s.group.Close()
		s.group = nil
	}
	s.dg.resuming, s.dg.resumeMerged = false, false
	s.resumeDeadline = time.Time{}
	if s.cfg.Transport == Stream {
		return s.sendClientHello()
	}
	s.dg.peer = 0
	// A fresh handshake is a new session to the peer's listener, which
	// tells it apart from the failed resumption by our index.
	s.dg.recv.Close()
	s.cfg.LocalIndex = 0
	if err := s.dgInit(); err != nil {
		return err
	}
	return s.sendClientHello()
}

// onResumptionRequest is the responder's side, either a session restored
// from the persisted group or an established session whose peer restarted.
func (s *Session) onResumptionRequest(m *ResumptionRequest, env []byte, sender uint32) error {
	h := sha256.Sum256(env)
	if s.dg.resAnswer != nil && h == s.dg.resHash {
		return s.emit(s.dg.resAnswer)
	}
	restored := s.phase == phaseWaitHello && s.dg.resuming && s.cfg.Role == Responder
	if !restored && s.phase != phaseEstablished {
		return drop("ResumptionRequest without a group")
	}
	epoch := s.group.Epoch()
	if ce, ok := mlsEpoch(m.Commit); !ok || ce != epoch {
		return drop("ResumptionRequest for epoch %d at epoch %d", ce, epoch)
	}
	if s.waiting {
		s.group.DiscardPendingCommit()
		s.waiting = false
		s.dg.rtx = nil
	}
	rec, err := s.group.Process(m.Commit)
	if err != nil {
		return drop("ResumptionRequest: %v", err)
	}
	if rec.Kind != mls.KindCommit || rec.Removed {
		return errBadUpdate
	}
	res, err := s.group.SelfUpdate()
	if err != nil {
		return err
	}
	if err := s.group.MergePendingCommit(); err != nil {
		return err
	}
	s.dg.peer = sender
	if err := s.sendControl(&ResumptionResponse{Commit: res.Commit}); err != nil {
		return err
	}
	s.dg.resHash, s.dg.resAnswer = h, s.dg.last
	// The peer's new session has no use for our old keys.
	if s.dg.prevSend != nil {
		s.dg.prevSend.Close()
		s.dg.prevSend = nil
	}
	s.dg.resuming = false
	if restored {
		s.resumed = true
		return s.establish()
	}
	if err := s.dgInstall(); err != nil {
		return err
	}
	s.events = append(s.events, EpochChanged{Epoch: s.group.Epoch()})
	s.schedule()
	return nil
}

// onResumptionResponse completes resumption on the initiator.
func (s *Session) onResumptionResponse(m *ResumptionResponse, sender uint32) error {
	if s.cfg.Role != Initiator || s.phase != phaseWaitHello || !s.dg.resuming {
		return drop("unexpected ResumptionResponse")
	}
	epoch := s.group.Epoch()
	if !s.dg.resumeMerged {
		epoch++
	}
	if ce, ok := mlsEpoch(m.Commit); !ok || ce != epoch {
		return drop("ResumptionResponse for epoch %d", ce)
	}
	if !s.dg.resumeMerged {
		if err := s.group.MergePendingCommit(); err != nil {
			return err
		}
		s.dg.resumeMerged = true
	}
	rec, err := s.group.Process(m.Commit)
	if err != nil {
		return drop("ResumptionResponse: %v", err)
	}
	if rec.Kind != mls.KindCommit || rec.Removed {
		return errBadUpdate
	}
	s.dg.rtx = nil
	s.resumeDeadline = time.Time{}
	s.dg.resuming = false
	s.dg.peer = sender
	s.resumed = true
	return s.establish()
}
