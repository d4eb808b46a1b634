package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// Identity hiding in the session (docs/protocol.md 7.14), both modes.
//
// An initiator with Config.HideIdentity never sends a hello in the clear:
// it seals its ClientHello or ResumptionRequest to the responder's hello
// key (SealedHello), asking for the key first (HelloKeyRequest) when it
// has none cached, and it accepts the answer only sealed under the answer
// key it chose (SealedAnswer). It reveals itself only to a key its pin
// signed, so an impostor of the responder's address learns nothing.
//
// A session with a HelloKeyring answers HelloKeyRequests, opens sealed
// hellos and refuses plaintext ones. For a sealed hello the order of work
// is: the listener's budgets (the caller's), the keyring's replay set, one
// HPKE open, the pin (or the group, for a resumption), the peer's hello
// timestamp, and only then signatures and the Welcome. A sealed hello for
// a key the keyring does not hold (rotated out, or never ours) gets the
// current HelloKeyAnswer, and the initiator reseals to it.

// maxHelloKeyAnswers bounds how often an initiator reseals its hello to
// a newly announced key: once for a stale cached key, once more for a
// rotation racing the first answer.
const maxHelloKeyAnswers = 3

// maxAnswerKeys bounds the answer keys an initiator keeps for sealed
// hellos still in flight (resealed ones and a fallback's).
const maxAnswerKeys = 8

// ErrPlaintextHello: identity hiding is on and a hello or its answer came
// in the clear (a protocol-1.0 style peer, or a downgrade attempt).
var ErrPlaintextHello = errors.New("session: plaintext hello refused: identity hiding is on")

// hideState is the identity-hiding half of a Session.
type hideState struct {
	// peerKey is the peer's verified hello key (initiator).
	peerKey *HelloKey
	// pending is the hello envelope to seal, of type pendingType, kept
	// until established so that a HelloKeyAnswer can make us reseal it.
	pending     []byte
	pendingType MsgType
	// answerKeys open the SealedAnswers to our sealed hellos.
	answerKeys [][]byte
	resealed   int
	// answerKey seals the answer to the sealed hello being handled
	// (responder); answered: it did.
	answerKey []byte
	answered  bool
	// inner: the message being dispatched came out of a sealed one.
	inner bool
	// floor is the latest hello timestamp of the peer's accepted
	// (Config.HelloFloor, then this session's); sent is the latest of ours.
	floor, sent time.Time
}

func (h *hideState) wipe() {
	clear(h.pending)
	h.pending = nil
	for _, k := range h.answerKeys {
		clear(k)
	}
	h.answerKeys = nil
	clear(h.answerKey)
	h.answerKey = nil
}

// HelloTime is the latest timestamp of a hello of the peer's that this
// session (or an earlier one, Config.HelloFloor) accepted. The caller keeps it per peer and passes it as Config.HelloFloor to the
// next session with that peer, so that a replayed hello is refused before
// any signature work even after this session is gone.
func (s *Session) HelloTime() time.Time { return s.hide.floor }

// PeerHelloKey is the peer's hello key as verified by this session, for
// the caller to cache (Config.PeerHelloKey); nil if it has none.
func (s *Session) PeerHelloKey() []byte {
	if s.hide.peerKey == nil {
		return nil
	}
	b, err := s.hide.peerKey.MarshalBinary()
	if err != nil {
		return nil
	}
	return b
}

// hideStart takes the cached hello key, if it still verifies.
func (s *Session) hideStart() {
	s.hide.floor = s.cfg.HelloFloor
	if !s.cfg.HideIdentity || len(s.cfg.PeerHelloKey) == 0 {
		return
	}
	k, err := ParseHelloKey(s.cfg.PeerHelloKey)
	if err == nil && k.Verify(s.suite, s.cfg.PeerPublicKey, s.now) == nil {
		s.hide.peerKey = k
	}
}

// sendHello sends the hello envelope env of type t: sealed when hiding,
// after a HelloKeyRequest if we have no hello key yet.
func (s *Session) sendHello(t MsgType, env []byte) error {
	if !s.cfg.HideIdentity {
		return s.sendEnvelope(t, env)
	}
	clear(s.hide.pending)
	s.hide.pending, s.hide.pendingType = env, t
	if s.hide.peerKey == nil {
		var pad []byte
		if s.cfg.Transport == Datagram {
			// A stream's handshake proved the address: nothing to amplify.
			pad = make([]byte, requestPadding(s.suite))
		}
		return s.sendControl(&HelloKeyRequest{Padding: pad})
	}
	return s.sendSealed()
}

// sendSealed seals the pending hello to the peer's hello key and sends it.
func (s *Session) sendSealed() error {
	ts := s.now
	if !ts.After(s.hide.sent) {
		// Strictly increasing within the session, even if the clock
		// is not; across sessions the caller's clock must be.
		ts = s.hide.sent.Add(time.Nanosecond)
	}
	sh, answerKey, err := sealHello(s.suite, s.hide.peerKey, ts, s.hide.pending, randomReader)
	if err != nil {
		return err
	}
	env, err := EncodeControl(sh)
	if err != nil {
		clear(answerKey)
		return err
	}
	s.hide.sent = ts
	if len(s.hide.answerKeys) == maxAnswerKeys {
		clear(s.hide.answerKeys[0])
		s.hide.answerKeys = s.hide.answerKeys[1:]
	}
	s.hide.answerKeys = append(s.hide.answerKeys, answerKey)
	if s.hide.pendingType == MsgResumptionRequest {
		// A reject names what the responder saw: the sealed envelope.
		s.res.ours, s.res.sent = sha256.Sum256(env), true
	}
	return s.sendEnvelope(MsgSealedHello, env)
}

// onHelloKeyAnswer: the initiator learns the responder's hello key, on
// first contact or because its sealed hello named a key the responder no
// longer holds, and (re)seals its hello to it.
func (s *Session) onHelloKeyAnswer(m *HelloKeyAnswer) error {
	if s.cfg.Role != Initiator || s.phase != phaseWaitHello || !s.cfg.HideIdentity || s.hide.pending == nil {
		return drop("unexpected HelloKeyAnswer")
	}
	k := m.Key
	if s.hide.peerKey != nil && s.hide.peerKey.ID == k.ID {
		return drop("HelloKeyAnswer of the key in use")
	}
	if s.hide.resealed >= maxHelloKeyAnswers {
		return drop("too many HelloKeyAnswers")
	}
	if err := k.Verify(s.suite, s.cfg.PeerPublicKey, s.now); err != nil {
		return drop("HelloKeyAnswer: %v", err)
	}
	s.hide.resealed++
	s.hide.peerKey = &k
	if err := s.sendSealed(); err != nil {
		return err
	}
	s.arm(s.hide.pendingType == MsgResumptionRequest && s.res.active)
	return nil
}

// onSealedAnswer opens the responder's answer and handles what it holds.
func (s *Session) onSealedAnswer(m *SealedAnswer, sender uint32) error {
	if s.cfg.Role != Initiator || s.phase != phaseWaitHello || len(s.hide.answerKeys) == 0 {
		return drop("unexpected SealedAnswer")
	}
	var env []byte
	for _, k := range s.hide.answerKeys {
		if b, err := openAnswer(k, m); err == nil {
			env = b
			break
		}
	}
	if env == nil {
		return drop("SealedAnswer does not open")
	}
	inner, err := DecodeControl(env)
	if err != nil {
		return drop("SealedAnswer: %v", err)
	}
	if t := inner.Type(); t != MsgServerHello && t != MsgResumptionResponse {
		return drop("SealedAnswer holds a %s", t)
	}
	err = s.dispatchInner(inner, env, sender)
	if s.phase == phaseEstablished {
		s.hide.wipe()
	}
	return err
}

// onHelloKeyRequest answers with the current hello key, statelessly. In
// datagram mode the answer may be at most three times the request, so a
// spoofed source cannot make us amplify.
func (s *Session) onHelloKeyRequest(env []byte, sender uint32) error {
	if s.cfg.HelloKeys == nil {
		return drop("HelloKeyRequest without hello keys")
	}
	return s.sendHelloKeyAnswer(env, sender)
}

func (s *Session) sendHelloKeyAnswer(request []byte, sender uint32) error {
	answer := s.cfg.HelloKeys.answer()
	if answer == nil {
		return drop("no hello key installed")
	}
	if s.cfg.Transport == Datagram && len(answer) > 3*len(request) {
		return drop("%d-byte request for a %d-byte answer", len(request), len(answer))
	}
	return s.sendUncached(answer, sender)
}

// onSealedHello opens a sealed hello and, if it is the pinned peer's and
// fresh, handles the hello inside; the answer goes out sealed.
func (s *Session) onSealedHello(m *SealedHello, env []byte, sender uint32) error {
	h := sha256.Sum256(env)
	if s.cfg.Transport == Datagram {
		// A retransmission of a hello we answered gets the same answer.
		if s.dg.helloAnswer != nil && h == s.dg.helloHash {
			return s.emit(s.dg.helloAnswer)
		}
		if s.dg.resAnswer != nil && h == s.dg.resHash {
			return s.emit(s.dg.resAnswer)
		}
	}
	ring := s.cfg.HelloKeys
	if ring == nil {
		return drop("SealedHello without hello keys")
	}
	oh, err := ring.openHello(s.now, m, env, h)
	if errors.Is(err, ErrUnknownHelloKey) {
		return s.sendHelloKeyAnswer(env, sender)
	}
	if err != nil {
		return drop("%v", err)
	}
	return s.handleOpened(oh, sender)
}

// HandleOpenedHello handles a sealed hello that a listener opened with
// HelloKeyring.OpenHello to find the session it is for (the pinned peer
// of h.SignatureKey, or the group of h.GroupID); sender is the sender
// index of its datagrams (datagram mode). The hello is not opened again.
// Errors are those of HandleDatagram or HandleStream.
func (s *Session) HandleOpenedHello(now time.Time, h *OpenedHello, sender uint32) error {
	if err := s.receiving(now, s.cfg.Transport, "HandleOpenedHello"); err != nil {
		return err
	}
	if h == nil || h.content == nil {
		return drop("OpenedHello used before")
	}
	err := s.handleOpened(h, sender)
	if s.cfg.Transport == Stream && errors.Is(err, ErrDropped) {
		err = fmt.Errorf("%w: %v", ErrUnexpectedMessage, err)
	}
	return s.fail(err)
}

// handleOpened checks whose an opened hello is and that it is fresh, then
// handles it. It is the last step before any signature work.
func (s *Session) handleOpened(oh *OpenedHello, sender uint32) error {
	o := oh.content
	oh.content = nil
	defer o.wipe()
	identified := false
	switch m := oh.inner.(type) {
	case *ClientHello:
		if !sameKey(oh.SignatureKey, s.cfg.PeerPublicKey) {
			// A stranger: silence, whatever it sealed.
			return fmt.Errorf("%w: %w", ErrDropped, ErrUnknownPeer)
		}
		identified = true
	case *ResumptionRequest:
		// Only our group's members can make a request for it that
		// verifies; an unidentified one gets at most a reject.
		identified = s.group != nil && s.forOurEpoch(m.Commit)
	}
	if identified && !o.time.After(s.hide.floor) {
		return drop("hello of %s, not after %s: a replay", o.time.Format(time.RFC3339Nano), s.hide.floor.Format(time.RFC3339Nano))
	}
	s.hide.answerKey, s.hide.answered = o.answerKey, false
	o.answerKey = nil
	err := s.dispatchInner(oh.inner, oh.env, sender)
	clear(s.hide.answerKey)
	s.hide.answerKey = nil
	if s.hide.answered {
		s.hide.floor = o.time
	}
	return err
}

// dispatchInner handles a message that came out of a sealed one; env is
// the sealed envelope, which duplicates and rejects are keyed by.
func (s *Session) dispatchInner(m Message, env []byte, sender uint32) error {
	s.hide.inner = true
	defer func() { s.hide.inner = false }()
	if s.cfg.Transport == Stream {
		return s.handle(m, env)
	}
	return s.dgHandle(m, env, true, sender)
}

// sealAnswerEnvelope seals the answer to the sealed hello being handled.
func (s *Session) sealAnswerEnvelope(t MsgType, env []byte) (MsgType, []byte, error) {
	if s.hide.answerKey == nil || (t != MsgServerHello && t != MsgResumptionResponse) {
		return t, env, nil
	}
	sa, err := sealAnswer(s.hide.answerKey, env)
	// One answer per answer key: its nonce is fixed.
	clear(s.hide.answerKey)
	s.hide.answerKey = nil
	if err != nil {
		return t, nil, err
	}
	b, err := EncodeControl(sa)
	if err != nil {
		return t, nil, err
	}
	s.hide.answered = true
	return MsgSealedAnswer, b, nil
}

// plainRefused reports whether a plaintext message of type t must be
// refused because identity hiding is on: hellos at a session that opens
// sealed ones or sends only sealed ones, answers at a hiding initiator.
func (s *Session) plainRefused(t MsgType) bool {
	if s.hide.inner {
		return false
	}
	switch t {
	case MsgClientHello, MsgResumptionRequest:
		return s.cfg.HelloKeys != nil || s.cfg.HideIdentity
	case MsgServerHello, MsgResumptionResponse:
		return s.cfg.HideIdentity
	}
	return false
}

// hidingMessage handles the messages of identity hiding in either mode;
// ok is false for any other message.
func (s *Session) hidingMessage(m Message, env []byte, sender uint32) (ok bool, err error) {
	switch m := m.(type) {
	case *HelloKeyRequest:
		return true, s.onHelloKeyRequest(env, sender)
	case *HelloKeyAnswer:
		return true, s.onHelloKeyAnswer(m)
	case *SealedHello:
		return true, s.onSealedHello(m, env, sender)
	case *SealedAnswer:
		return true, s.onSealedAnswer(m, sender)
	}
	return false, nil
}
