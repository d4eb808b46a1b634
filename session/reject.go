package session

import "time"

// ResumptionReject (docs/protocol.md 7.10). A session that receives a
// ResumptionRequest it cannot apply (no group, another group or epoch, a
// commit that does not verify, or a state that cannot resume) answers
// with the SHA-256 of the request's envelope, so that the initiator
// handshakes afresh at once instead of after ResumeTimeout.
//
// The reject is not signed, on purpose. All it can make an initiator do
// is fall back to a fresh handshake, which is fully authenticated and
// yields a fresh group; an attacker who can drop the request causes the
// same fallback ResumeTimeout later. The hash binds the reject to one
// request, whose commit carries fresh HPKE and signature output, so only
// someone who saw that request can name it; an initiator acts only on a
// reject naming the request it is still waiting on, and only once, since
// it then stops resuming. A signature would keep an attacker who reads
// but cannot drop traffic from causing that harmless fallback, at the
// price of a signing operation per distinct request, which anyone who
// can reach the session can send by the thousand (an unverifiable
// request costs nothing to forge): a CPU sink that would need a rate
// limit, which would then let that same attacker starve the genuine
// rejects. Unsigned, a reject costs a hash and one small datagram, never
// larger than the request it answers.
//
// A session acts on each distinct request once: it remembers the requests
// it acted on (answered, rejected, or dropped as the initiator of a
// crossing), so a duplicate of one answered gets the cached answer, and a
// duplicate of one dropped nothing. A duplicate of one rejected gets the
// reject again, since a reject can be lost like any datagram and the
// initiator's retransmission is how we learn it was: without a second
// reject it would wait out ResumeTimeout. Replays are held to
// rejectRepeats rejects per request in all, at most one per half
// RetransmitMin (the initiator's fastest retransmission), so a flood of
// copies earns a handful of small datagrams, never more bytes than it
// sent.

// seenRequests is how many of the peer's requests a session remembers.
// One restart makes one request (retransmissions repeat its bytes), so a
// few cover any honest peer; a replay of an older one evicted from the
// list costs one more small reject.
const seenRequests = 8

// rejectRepeats is how many rejects one request gets at most: the first
// and one for each retransmission an initiator sends within
// ResumeTimeout (500 ms, 1 s, 2 s at the defaults).
const rejectRepeats = 4

// seenRequest is a request acted on; rejects counts the rejects it got.
type seenRequest struct {
	hash       [32]byte
	rejects    int
	lastReject time.Time
}

// resumeState is the resumption progress of a session, in both modes.
type resumeState struct {
	// active: restored from Config.Resume and not yet established by
	// resumption nor fallen back; merged: as initiator, our commit is
	// merged (a response for epoch e+1 arrived).
	active, merged bool
	// ours is the SHA-256 of the ResumptionRequest we sent (sent).
	ours [32]byte
	sent bool
	// seen are the peer's requests acted on, a ring, allocated by the
	// first: most sessions never see one, and inline it would be half a
	// KiB of every peer of a hub.
	seen  *[seenRequests]seenRequest
	nseen int
}

// remember records h and returns its entry, and whether it is new.
func (r *resumeState) remember(h [32]byte) (*seenRequest, bool) {
	if r.seen == nil {
		r.seen = new([seenRequests]seenRequest)
	}
	for i := range min(r.nseen, seenRequests) {
		if r.seen[i].hash == h {
			return &r.seen[i], false
		}
	}
	e := &r.seen[r.nseen%seenRequests]
	*e = seenRequest{hash: h}
	r.nseen++
	return e, true
}

// rejectAgain reports whether a duplicate of the request e gets another
// reject now.
func (s *Session) rejectAgain(e *seenRequest) bool {
	return e.rejects > 0 && e.rejects < rejectRepeats && s.now.Sub(e.lastReject) >= s.cfg.RetransmitMin/2
}

// reject answers the request hashed h, which came from sender's index,
// with a ResumptionReject: in datagram mode a plaintext control datagram
// to sender, in stream mode a plaintext record (we are still waiting for
// the handshake there, so nothing is protected yet).
func (s *Session) reject(h [32]byte, sender uint32) error {
	e, _ := s.res.remember(h)
	e.rejects++
	e.lastReject = s.now
	env, err := EncodeControl(&ResumptionReject{RequestHash: h})
	if err != nil {
		return err
	}
	return s.sendUncached(env, sender)
}

// sendUncached sends the plaintext envelope env to sender, as a stateless
// answer: a reject or a HelloKeyAnswer.
func (s *Session) sendUncached(env []byte, sender uint32) error {
	if s.cfg.Transport == Stream {
		s.out = appendPlainRecords(s.out, env)
		return nil
	}
	// Not s.dg.last: a stateless answer is neither retransmitted nor
	// cached, and it goes to whoever sent the request, whatever peer
	// index we hold.
	m := &ctlMsg{id: s.dg.nextID, env: env, plain: true, receiver: sender}
	s.dg.nextID++
	return s.emit(m)
}

// rejectsOurs reports whether m names the ResumptionRequest we sent, as
// the initiator still waiting for the handshake.
func (s *Session) rejectsOurs(m *ResumptionReject) bool {
	return s.cfg.Role == Initiator && s.phase == phaseWaitHello && s.res.sent && m.RequestHash == s.res.ours
}

// dgResumptionReject: in datagram mode anything but a reject of the
// request we are still waiting on is dropped; that one starts the fresh
// handshake at once.
func (s *Session) dgResumptionReject(m *ResumptionReject) error {
	if !s.rejectsOurs(m) || !s.res.active {
		return drop("ResumptionReject of no request of ours")
	}
	return s.resumeFallback()
}
