package session

import (
	"bytes"
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
// A session that cannot apply a request answers ResumptionReject (reject.go)
// and the initiator handshakes afresh at once; without an answer it falls
// back after ResumeTimeout.
//
// Both sides restarting at once (datagram mode) both resume as initiator,
// and their requests cross: each is for the same group and epoch. The
// simultaneous-open order decides (7.11): the side with the lower
// signature key stays initiator and drops the peer's request, the other
// becomes the responder of the lower side's request. A resuming initiator
// that receives a ClientHello from its peer (the peer had no usable state,
// or already fell back) gives up resuming and follows the same order for
// the fresh handshake.
//
// Stream mode (a TCP reconnect): both sides are new Sessions restored with
// Config.Resume on a new connection, and the messages are the plaintext
// records of section 7's framing. One connection has one dialer and one
// acceptor, so requests never cross on it (crossing dials are two
// connections, which the caller resolves with PreferOutgoing). A responder
// that cannot resume rejects the request and keeps waiting; the initiator
// then, or after ResumeTimeout, sends a ClientHello on the same
// connection, so the responder reads two plaintext messages. A
// ResumptionResponse that arrives after the fallback is a fatal protocol
// error (the caller reconnects).

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
	s.res.active = true
	if s.cfg.Role == Responder {
		return nil
	}
	res, err := g.SelfUpdate()
	if err != nil {
		return err
	}
	env, err := EncodeControl(&ResumptionRequest{Commit: res.Commit})
	if err != nil {
		return err
	}
	if !s.cfg.HideIdentity {
		// A reject must name exactly this request (reject.go); a sealed
		// one's is named when it is sealed (sendSealed).
		s.res.ours, s.res.sent = sha256.Sum256(env), true
	}
	if err := s.sendHello(MsgResumptionRequest, env); err != nil {
		return err
	}
	s.arm(true)
	return nil
}

// resumeFallback gives up on resumption and starts a fresh handshake.
func (s *Session) resumeFallback() error {
	s.abandonResume()
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

// abandonResume forgets the restored group and stops the request's
// retransmission and deadline.
func (s *Session) abandonResume() {
	if s.group != nil {
		s.group.Close()
		s.group = nil
	}
	s.res.active, s.res.merged = false, false
	s.resumeDeadline = time.Time{}
	s.dg.rtx = nil
}

// onResumptionRequest answers a peer that resumes: a session restored
// from the persisted group, an established session whose peer restarted
// (datagram mode), or a resuming initiator whose request crossed the
// peer's. Anything else, or a request it cannot apply, gets a reject.
// Each distinct request is acted on once: a duplicate of the one answered
// gets the cached response, any other duplicate nothing.
func (s *Session) onResumptionRequest(m *ResumptionRequest, env []byte, sender uint32) error {
	h := sha256.Sum256(env)
	if h == s.dg.resHash {
		if s.dg.resAnswer != nil {
			return s.emit(s.dg.resAnswer)
		}
		return drop("duplicate of the ResumptionRequest answered")
	}
	if e, isNew := s.res.remember(h); !isNew {
		if s.rejectAgain(e) {
			return s.reject(h, sender)
		}
		return drop("duplicate ResumptionRequest")
	}
	switch {
	case s.phase == phaseEstablished:
		return s.resumeRequest(m, h, sender, false)
	case s.phase == phaseWaitHello && s.res.active && s.cfg.Role == Responder:
		return s.resumeRequest(m, h, sender, true)
	case s.phase == phaseWaitHello && s.res.active && s.cfg.Role == Initiator:
		return s.crossingRequest(m, h, sender)
	}
	return s.reject(h, sender)
}

// resumeRequest applies the peer's commit if it is for our group and
// epoch, and answers; restored says we are a session restored for this.
func (s *Session) resumeRequest(m *ResumptionRequest, h [32]byte, sender uint32, restored bool) error {
	if !s.forOurEpoch(m.Commit) {
		return s.reject(h, sender)
	}
	// Process verifies everything before it changes anything (and only
	// then drops a pending commit of ours), so a forged request costs no
	// state: an update of ours in flight goes on.
	rec, err := s.group.Process(m.Commit)
	if err != nil {
		return s.reject(h, sender)
	}
	if rec.Kind != mls.KindCommit || rec.Removed {
		return errBadUpdate
	}
	if s.waiting {
		// Our ConnectionUpdate died with the peer's old session.
		s.waiting = false
		s.dg.rtx = nil
	}
	return s.answerRequest(h, sender, restored)
}

// crossingRequest resolves two ResumptionRequests crossing (both sides
// restarted): the side with the lower signature key stays initiator, the
// other discards its own commit and answers the lower side's request.
func (s *Session) crossingRequest(m *ResumptionRequest, h [32]byte, sender uint32) error {
	if s.res.merged || !s.forOurEpoch(m.Commit) {
		// Another state than ours: neither request can be applied.
		return s.reject(h, sender)
	}
	if compareKeys(s.ownPub, s.cfg.PeerPublicKey) < 0 {
		// The peer answers ours once it has it. Its request shows it is
		// listening now, where ours may have found nobody: resend ours
		// at once rather than at the next retransmission (once per
		// distinct request, as the duplicate check above runs first).
		if r := s.dg.rtx; r != nil && s.cfg.Transport == Datagram {
			return s.emit(r.msg)
		}
		return drop("simultaneous resumption: we stay initiator")
	}
	// Processing the peer's commit replaces our pending one only if it
	// verifies: a forgery leaves our own request standing.
	rec, err := s.group.Process(m.Commit)
	if err != nil {
		return s.reject(h, sender)
	}
	if rec.Kind != mls.KindCommit || rec.Removed {
		return errBadUpdate
	}
	s.cfg.Role = Responder
	s.dg.rtx = nil
	s.resumeDeadline = time.Time{}
	return s.answerRequest(h, sender, true)
}

// forOurEpoch reports whether commit is for our group at its current
// epoch.
func (s *Session) forOurEpoch(commit *mls.MLSMessage) bool {
	if commit == nil || commit.PublicMessage == nil {
		return false
	}
	c := &commit.PublicMessage.Content
	return c.Epoch == s.group.Epoch() && bytes.Equal(c.GroupID, s.group.GroupID())
}

// answerRequest: the peer's commit is applied (epoch e+1). Commit and
// merge our own (e+2), answer, and install e+2's keys. restored: this
// session was waiting to resume and is established by it.
func (s *Session) answerRequest(h [32]byte, sender uint32, restored bool) error {
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
	s.res.active = false
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
	if s.cfg.Role != Initiator || s.phase != phaseWaitHello || !s.res.active {
		return drop("unexpected ResumptionResponse")
	}
	epoch := s.group.Epoch()
	if !s.res.merged {
		epoch++
	}
	if ce, ok := mlsEpoch(m.Commit); !ok || ce != epoch {
		return drop("ResumptionResponse for epoch %d", ce)
	}
	var rec *mls.Received
	var err error
	if !s.res.merged {
		// The response's path secret is encrypted to the leaf key our
		// commit just made: MergeAndProcess keeps it parsed for it.
		rec, err = s.group.MergeAndProcess(m.Commit)
		if s.group.Epoch() < epoch {
			// Our own commit did not merge (err says why).
			return err
		}
		s.res.merged = true
	} else {
		rec, err = s.group.Process(m.Commit)
	}
	if err != nil {
		return drop("ResumptionResponse: %v", err)
	}
	if rec.Kind != mls.KindCommit || rec.Removed {
		return errBadUpdate
	}
	s.dg.rtx = nil
	s.resumeDeadline = time.Time{}
	s.res.active = false
	s.dg.peer = sender
	s.resumed = true
	return s.establish()
}

// helloWhileResuming: a resuming initiator got a ClientHello from its
// pinned peer, which therefore handshakes afresh (it had no usable state,
// or its resumption failed). Waiting for an answer to our request is then
// pointless; we handshake too, by the simultaneous-open order: the lower
// key sends its own ClientHello (with a new index) and leaves the peer's
// unanswered, the higher one answers the peer's as responder.
func (s *Session) helloWhileResuming(m *ClientHello, h [32]byte, sender uint32) error {
	// An invalid or forged hello must leave our resumption standing.
	checked, err := s.checkClientHello(m)
	if err != nil {
		return drop("ClientHello: %v", err)
	}
	if compareKeys(s.ownPub, s.cfg.PeerPublicKey) < 0 {
		return s.resumeFallback()
	}
	s.abandonResume()
	s.cfg.Role = Responder
	return s.answerHello(checked, h, sender)
}
