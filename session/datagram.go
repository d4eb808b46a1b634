package session

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
)

// Control datagrams (docs/protocol.md, "Datagram mode"). They use the type
// byte range 0x01-0x7f that the record layer reserves for the session.
const (
	// DatagramHandshake carries a fragment of a plaintext control message
	// (ClientHello, ServerHello, ResumptionRequest, ResumptionResponse,
	// ResumptionReject):
	//
	//	uint8  type = 0x01;
	//	uint32 sender_index;
	//	uint32 receiver_index;   // 0 in a ClientHello
	//	opaque cookie<0..255>;   // from a CookieChallenge, else empty
	//	ControlFragment fragment;
	DatagramHandshake = 0x01
	// DatagramCookie is a CookieChallenge:
	//
	//	uint8  type = 0x02;
	//	uint32 receiver_index;   // the initiator's sender_index
	//	opaque cookie<1..255>;
	DatagramCookie = 0x02
)

// ControlFragment carries bytes [offset, offset+len) of one control
// envelope. Inside protected records (content type handshake) it is the
// whole record content:
//
//	uint32 message_id;       // per sender, retransmissions reuse it
//	uint32 total_length;     // of the envelope, 1..2^20
//	uint32 fragment_offset;
//	opaque fragment[rest];   // at least one byte
const fragHeaderLen = 12

// plainHeaderMin is the control datagram header without the cookie bytes.
const plainHeaderMin = 1 + 4 + 4 + 1

// Limits of the reassembly buffer.
const (
	maxReassembly = 4  // partial messages at once
	maxSpans      = 64 // disjoint received ranges of one message
	maxCookieLen  = 255
	maxChallenges = 8 // CookieChallenges an initiator follows
)

// dgState is the datagram-mode half of a Session.
type dgState struct {
	local, peer uint32
	send        *record.DatagramSender
	recv        *record.DatagramReceiver
	// prevSend keeps sealing under the previous epoch until the peer
	// proves it switched (a record of the new epoch authenticates): a
	// duplicate ConnectionUpdate means our EpochKeyUpdate was lost, and
	// the peer, still in the old epoch, can only open it under old keys.
	prevSend *record.DatagramSender
	// nextSend is the current epoch's sender while the commit's receiver
	// holds it back (update.go, holdSend); send is then the old epoch's.
	nextSend *record.DatagramSender
	// updateDue: an update was asked for while nextSend was held back.
	updateDue  bool
	cookie     []byte
	challenges int
	nextID     uint32
	last       *ctlMsg // the control message sent last
	reasm      reassembler
	rtx        *retransmit
	graceCheck time.Time
	// Cached answers, so that a duplicate request gets the same answer
	// without any state change: the ServerHello for the ClientHello, the
	// EpochKeyUpdate for the last applied ConnectionUpdate, the
	// ResumptionResponse for the ResumptionRequest.
	helloHash, cuHash, resHash       [32]byte
	helloAnswer, cuAnswer, resAnswer *ctlMsg
}

// ctlMsg is one control envelope as sent: retransmissions and cached
// answers resend it with the same message id.
type ctlMsg struct {
	id       uint32
	env      []byte
	plain    bool
	receiver uint32
}

type retransmit struct {
	msg            *ctlMsg
	interval       time.Duration
	next, deadline time.Time
	resume         bool // giving up falls back to a fresh handshake
	// hold: the message is our EpochKeyUpdate while we hold back our
	// switch (update.go); an answer is any record of the new epoch, and
	// giving up ends the hold rather than the session.
	hold bool
}

func (s *Session) dgInit() error {
	idx := s.cfg.LocalIndex
	for idx == 0 {
		var b [4]byte
		if _, err := s.cfg.Rand.Read(b[:]); err != nil {
			return err
		}
		idx = binary.BigEndian.Uint32(b[:])
	}
	s.dg.local = idx
	s.dg.peer = s.cfg.PeerIndex
	s.dg.recv = record.NewDatagramReceiver(idx, s.cfg.Record)
	return nil
}

func (s *Session) dgClose() {
	if s.dg.recv != nil {
		s.dg.recv.Close()
	}
	if s.dg.send != nil {
		s.dg.send.Close()
	}
	if s.dg.prevSend != nil {
		s.dg.prevSend.Close()
	}
	if s.dg.nextSend != nil {
		s.dg.nextSend.Close()
	}
	s.dg.rtx = nil
	s.dg.reasm = reassembler{}
	s.dg.helloAnswer, s.dg.cuAnswer, s.dg.resAnswer = nil, nil, nil
}

// LocalIndex is our receiver index: protected datagrams and answers to our
// control datagrams carry it (datagram mode).
func (s *Session) LocalIndex() uint32 { return s.dg.local }

// PeerIndex is the peer's receiver index, zero until the handshake
// learned it (datagram mode).
func (s *Session) PeerIndex() uint32 { return s.dg.peer }

// mono is the record layer's monotonic time.
func (s *Session) mono() time.Duration { return s.now.Sub(s.origin) }

func drop(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDropped}, args...)...)
}

// HandleDatagram consumes one received datagram (datagram mode); d is
// decrypted in place. An error wrapping ErrDropped means only this datagram
// was discarded (forged, replayed, stale, unexpected) and the session goes
// on; any other error is fatal and the session is closed.
func (s *Session) HandleDatagram(now time.Time, d []byte) error {
	if err := s.receiving(now, Datagram, "HandleDatagram"); err != nil {
		return err
	}
	pkt, data, err := s.readDatagram(d)
	if data {
		s.packets = append(s.packets, append([]byte(nil), pkt...))
	}
	return s.fail(err)
}

// ReceiveDatagram is HandleDatagram for the data path: when d is a record
// carrying an IP packet (or an empty keepalive), data is true and pkt is
// the packet, decrypted in place and aliasing d, and nothing is added to
// Packets. Every other datagram is handled exactly as HandleDatagram
// handles it, and data is false. Errors are those of HandleDatagram; on a
// fatal one a packet returned with it must not be delivered.
func (s *Session) ReceiveDatagram(now time.Time, d []byte) (pkt []byte, data bool, err error) {
	if err := s.receiving(now, Datagram, "ReceiveDatagram"); err != nil {
		return nil, false, err
	}
	pkt, data, err = s.readDatagram(d)
	return pkt, data, s.fail(err)
}

// readDatagram handles one datagram; an application-data record's
// content is returned (data true) for the caller to deliver.
func (s *Session) readDatagram(d []byte) (pkt []byte, data bool, err error) {
	if len(d) == 0 {
		return nil, false, drop("empty datagram")
	}
	switch d[0] {
	case record.DatagramTypeRecord:
		ct, content, err := s.dg.recv.Open(d, s.mono())
		return s.opened(d, ct, content, err)
	case DatagramHandshake:
		sender, receiver, _, frag, ok := parsePlainHeader(d)
		if !ok {
			return nil, false, drop("malformed control datagram")
		}
		if receiver != 0 && receiver != s.dg.local {
			return nil, false, drop("control datagram for index %#x", receiver)
		}
		return nil, false, s.onFragment(reasmKey{plain: true, sender: sender}, frag)
	case DatagramCookie:
		return nil, false, s.onCookieChallenge(d)
	}
	return nil, false, drop("datagram type %#x", d[0])
}

// opened acts on the outcome of opening the record d.
func (s *Session) opened(d []byte, ct record.ContentType, content []byte, err error) (pkt []byte, data bool, _ error) {
	if err != nil {
		if errors.Is(err, record.ErrReplay) || errors.Is(err, record.ErrTooOld) {
			s.replayed++
		}
		// Wrapped, so that callers can tell why (errors.Is).
		return nil, false, fmt.Errorf("%w: %w", ErrDropped, err)
	}
	if s.group != nil && binary.BigEndian.Uint16(d[1:]) == uint16(s.group.Epoch()) {
		s.peerSwitched()
		if s.dg.helloAnswer != nil || s.dg.resAnswer != nil {
			s.forgetAnswers()
		}
	}
	switch ct {
	case record.ContentApplicationData:
		s.epochBytes += uint64(len(content))
		return content, true, s.checkPolicy()
	case record.ContentHandshake:
		// Keyed by the record's epoch too: a peer that restarted at the
		// same index numbers its messages from 0 again, and fragments of
		// its old session's message must not complete its new one's.
		key := reasmKey{sender: s.dg.peer, epoch: binary.BigEndian.Uint16(d[1:])}
		return nil, false, s.onFragment(key, content)
	}
	return nil, false, drop("record of content type %d", ct)
}

// forgetAnswers drops the cached ServerHello and ResumptionResponse once
// a record of the peer's authenticates under the current epoch, which
// those answers (or later commits) started: the peer has them, and an
// idle session should not keep kilobytes of Welcome for a duplicate that
// can only be a replay now.
func (s *Session) forgetAnswers() {
	if s.dg.last == s.dg.helloAnswer || s.dg.last == s.dg.resAnswer {
		s.dg.last = nil
	}
	s.dg.helloAnswer, s.dg.resAnswer = nil, nil
}

// parsePlainHeader splits a DatagramHandshake datagram.
func parsePlainHeader(d []byte) (sender, receiver uint32, cookie, frag []byte, ok bool) {
	if len(d) < plainHeaderMin || d[0] != DatagramHandshake {
		return 0, 0, nil, nil, false
	}
	sender = binary.BigEndian.Uint32(d[1:])
	receiver = binary.BigEndian.Uint32(d[5:])
	n := int(d[9])
	if len(d) < plainHeaderMin+n {
		return 0, 0, nil, nil, false
	}
	return sender, receiver, d[plainHeaderMin : plainHeaderMin+n], d[plainHeaderMin+n:], true
}

// parseFragment splits a ControlFragment and checks its bounds.
func parseFragment(b []byte) (id uint32, total, off int, data []byte, ok bool) {
	if len(b) <= fragHeaderLen {
		return 0, 0, 0, nil, false
	}
	id = binary.BigEndian.Uint32(b)
	t := binary.BigEndian.Uint32(b[4:])
	o := binary.BigEndian.Uint32(b[8:])
	data = b[fragHeaderLen:]
	if t == 0 || t > maxControlLen+7 || uint64(o)+uint64(len(data)) > uint64(t) {
		return 0, 0, 0, nil, false
	}
	return id, int(t), int(o), data, true
}

// onFragment adds one fragment and handles the message it completes; key
// says where it came from (its id is filled in here).
func (s *Session) onFragment(key reasmKey, frag []byte) error {
	plain, sender := key.plain, key.sender
	id, total, off, data, ok := parseFragment(frag)
	if !ok {
		if plain {
			return drop("malformed fragment")
		}
		return fmt.Errorf("%w: malformed fragment", ErrMalformed)
	}
	key.id = id
	env, err := s.dg.reasm.add(s.now, key, total, off, data, s.cfg.ReassemblyBytes)
	if err != nil || env == nil {
		return err
	}
	m, err := DecodeControl(env)
	if err != nil {
		if plain {
			return drop("%v", err)
		}
		return err // the authenticated peer sent garbage
	}
	return s.dgHandle(m, env, plain, sender)
}

// isPlainType: the messages sent before keys exist, in plaintext control
// datagrams. Everything else travels only in protected records.
func isPlainType(t MsgType) bool {
	switch t {
	case MsgClientHello, MsgServerHello, MsgResumptionRequest, MsgResumptionResponse, MsgResumptionReject,
		MsgHelloKeyRequest, MsgHelloKeyAnswer, MsgSealedHello, MsgSealedAnswer:
		return true
	}
	return false
}

// dgHandle dispatches one complete control message in datagram mode.
// Unlike a stream, a datagram can be duplicated, reordered, lost or forged,
// so what a stream treats as a protocol violation is dropped here unless
// it came authenticated from the peer.
func (s *Session) dgHandle(m Message, env []byte, plain bool, sender uint32) error {
	if plain != isPlainType(m.Type()) {
		return drop("%s in the wrong framing", m.Type())
	}
	if s.plainRefused(m.Type()) {
		return fmt.Errorf("%w: %w: %s", ErrDropped, ErrPlaintextHello, m.Type())
	}
	if ok, err := s.hidingMessage(m, env, sender); ok {
		return err
	}
	switch m := m.(type) {
	case *ClientHello:
		return s.dgClientHello(m, env, sender)
	case *ServerHello:
		return s.dgServerHello(m, sender)
	case *ResumptionRequest:
		return s.onResumptionRequest(m, env, sender)
	case *ResumptionResponse:
		return s.onResumptionResponse(m, sender)
	case *ResumptionReject:
		return s.dgResumptionReject(m)
	case *ConnectionUpdate:
		if s.phase == phaseEstablished {
			return s.dgConnectionUpdate(m, env)
		}
	case *EpochKeyUpdate:
		if s.phase == phaseEstablished {
			return s.dgEpochKeyUpdate(m)
		}
	case *Alert:
		s.shutdown(&AlertError{Code: m.Code})
		return nil
	case *Close:
		s.shutdown(ErrPeerClosed)
		return nil
	}
	return drop("unexpected %s", m.Type())
}

func (s *Session) dgClientHello(m *ClientHello, env []byte, sender uint32) error {
	h := sha256.Sum256(env)
	switch {
	case s.cfg.Role == Responder && s.phase == phaseWaitHello:
		if s.group != nil {
			// A resuming responder: the peer gave up on resumption.
			s.abandonResume()
		}
		return s.acceptClientHello(m, h, sender)
	case s.cfg.Role == Responder && s.phase == phaseEstablished && s.dg.helloAnswer != nil && h == s.dg.helloHash:
		return s.emit(s.dg.helloAnswer)
	case s.cfg.Role == Initiator && s.phase == phaseWaitHello && s.res.active:
		return s.helloWhileResuming(m, h, sender)
	case s.cfg.Role == Initiator && s.phase == phaseWaitHello && s.kp != nil:
		return s.simultaneousOpen(m, h, sender)
	}
	return drop("unexpected ClientHello")
}

func (s *Session) acceptClientHello(m *ClientHello, h [32]byte, sender uint32) error {
	kp, err := s.checkClientHello(m)
	if err != nil {
		return err
	}
	return s.answerHello(kp, h, sender)
}

// answerHello answers the ClientHello with the checked KeyPackage kp
// from sender and keeps the ServerHello for its duplicates.
func (s *Session) answerHello(kp *mls.CheckedKeyPackage, h [32]byte, sender uint32) error {
	s.dg.peer = sender
	if err := s.answerClientHello(kp); err != nil {
		return err
	}
	s.dg.helloHash, s.dg.helloAnswer = h, s.dg.last
	return nil
}

// simultaneousOpen resolves two ClientHellos crossing: the side with the
// lower signature public key stays initiator and ignores the peer's
// ClientHello; the other drops its own KeyPackage and answers as responder.
// Both compute the same order, so they converge on one group.
func (s *Session) simultaneousOpen(m *ClientHello, h [32]byte, sender uint32) error {
	kp := m.KeyPackage.KeyPackage
	if kp == nil || !sameKey(kp.LeafNode.SignatureKey, s.cfg.PeerPublicKey) {
		return drop("ClientHello from a stranger")
	}
	if compareKeys(s.ownPub, s.cfg.PeerPublicKey) < 0 {
		return drop("simultaneous open: we stay initiator")
	}
	// Checked before our own KeyPackage goes: an invalid or forged
	// hello must cost us nothing but the check.
	checked, err := s.checkClientHello(m)
	if err != nil {
		return drop("ClientHello: %v", err)
	}
	s.kp = nil
	s.kpSecrets.Wipe()
	s.kpSecrets = nil
	s.dg.rtx = nil
	s.cfg.Role = Responder
	return s.answerHello(checked, h, sender)
}

func compareKeys(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return len(a) - len(b)
}

func (s *Session) dgServerHello(m *ServerHello, sender uint32) error {
	if s.cfg.Role != Initiator || s.phase != phaseWaitHello || s.kp == nil || s.res.active {
		return drop("unexpected ServerHello")
	}
	s.dg.peer = sender
	if err := s.onServerHello(m); err != nil {
		// Anyone who saw our KeyPackage can welcome us into a group of
		// theirs; that is refused and we keep waiting for the real one.
		s.dg.peer = 0
		return drop("ServerHello: %v", err)
	}
	s.dg.rtx = nil
	return nil
}

// dgSendControl frames env for datagrams and queues it.
func (s *Session) dgSendControl(t MsgType, env []byte) error {
	m := &ctlMsg{id: s.dg.nextID, env: env, plain: isPlainType(t), receiver: s.dg.peer}
	s.dg.nextID++
	switch t {
	case MsgClientHello, MsgHelloKeyRequest, MsgSealedHello:
		// Unaddressed: a sealed resumption must not name the index of
		// the session it resumes, which would link the two.
		m.receiver = 0
	}
	s.dg.last = m
	return s.emit(m)
}

// emit queues the fragments of m, protected ones under the current keys.
func (s *Session) emit(m *ctlMsg) error { return s.emitVia(m, s.dg.send) }

func (s *Session) emitVia(m *ctlMsg, snd *record.DatagramSender) error {
	env := m.env
	if m.plain {
		s.out = appendPlainDatagrams(s.out, env, s.dg.local, m.receiver, m.id, s.dg.cookie, s.cfg.MaxDatagramSize)
		return nil
	}
	chunk := s.cfg.MaxDatagramSize - record.DatagramOverhead - fragHeaderLen
	for off := 0; off < len(env); off += chunk {
		end := min(off+chunk, len(env))
		p := make([]byte, 0, fragHeaderLen+end-off)
		p = appendFragHeader(p, m.id, len(env), off)
		p = append(p, env[off:end]...)
		rec, err := snd.Seal(make([]byte, 0, record.DatagramOverhead+len(p)), record.ContentHandshake, p, 0)
		if err != nil {
			return err
		}
		s.out = append(s.out, rec)
	}
	return nil
}

// appendPlainDatagrams appends the DatagramHandshake datagrams that carry
// env as message id from sender to receiver, at most maxSize bytes each.
func appendPlainDatagrams(out [][]byte, env []byte, sender, receiver, id uint32, cookie []byte, maxSize int) [][]byte {
	hdr := plainHeaderMin + len(cookie) + fragHeaderLen
	chunk := maxSize - hdr
	for off := 0; off < len(env); off += chunk {
		end := min(off+chunk, len(env))
		d := make([]byte, 0, hdr+end-off)
		d = append(d, DatagramHandshake)
		d = binary.BigEndian.AppendUint32(d, sender)
		d = binary.BigEndian.AppendUint32(d, receiver)
		d = append(d, byte(len(cookie)))
		d = append(d, cookie...)
		d = appendFragHeader(d, id, len(env), off)
		out = append(out, append(d, env[off:end]...))
	}
	return out
}

func appendFragHeader(b []byte, id uint32, total, off int) []byte {
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(total))
	return binary.BigEndian.AppendUint32(b, uint32(off))
}

// arm starts retransmitting the control message sent last until it is
// answered.
func (s *Session) arm(resume bool) {
	if s.cfg.Transport != Datagram {
		// A stream is reliable: nothing is retransmitted, but an
		// unanswered ResumptionRequest still falls back in time.
		if resume {
			s.resumeDeadline = s.now.Add(s.cfg.ResumeTimeout)
		}
		return
	}
	giveUp := s.cfg.GiveUp
	if resume {
		giveUp = s.cfg.ResumeTimeout
	}
	s.dg.rtx = &retransmit{msg: s.dg.last, interval: s.cfg.RetransmitMin,
		next: s.now.Add(s.cfg.RetransmitMin), deadline: s.now.Add(giveUp), resume: resume}
}

// dgInstall switches both directions to the keys of the group's epoch.
func (s *Session) dgInstall() error {
	send, recv, err := s.deriveKeys()
	if err != nil {
		return err
	}
	if err := s.dg.recv.SetKeys(recv); err != nil {
		send.Wipe()
		return err
	}
	snd := record.NewDatagramSender(s.dg.peer, s.cfg.Record)
	if err := snd.SetKeys(send); err != nil {
		send.Wipe()
		return err
	}
	if s.dg.nextSend != nil {
		// Held back for an epoch that this one supersedes (a
		// resumption answered while we held): nothing of the old
		// epoch's is owed to the peer any more.
		s.dg.send.Close()
		s.dg.send, s.dg.nextSend, s.dg.updateDue = s.dg.nextSend, nil, false
		if s.dg.rtx != nil && s.dg.rtx.hold {
			s.dg.rtx = nil
		}
	}
	if s.dg.prevSend != nil {
		s.dg.prevSend.Close()
	}
	s.dg.prevSend, s.dg.send = s.dg.send, snd
	s.dg.graceCheck = s.now.Add(s.cfg.Record.GracePeriod)
	return nil
}

// onCookieChallenge: the responder's listener is under load and wants our
// ClientHello again with its cookie. Only an initiator still waiting for
// its ServerHello follows, a bounded number of times.
func (s *Session) onCookieChallenge(d []byte) error {
	receiver, cookie, ok := parseCookieChallenge(d)
	if !ok || receiver != s.dg.local {
		return drop("malformed cookie challenge")
	}
	r := s.dg.rtx
	if s.cfg.Role != Initiator || s.phase != phaseWaitHello || r == nil || s.dg.challenges >= maxChallenges {
		return drop("unexpected cookie challenge")
	}
	s.dg.challenges++
	s.dg.cookie = append(s.dg.cookie[:0], cookie...)
	return s.emit(r.msg)
}

// parseCookieChallenge splits a DatagramCookie datagram.
func parseCookieChallenge(d []byte) (receiver uint32, cookie []byte, ok bool) {
	if len(d) < 6 || d[0] != DatagramCookie {
		return 0, nil, false
	}
	n := int(d[5])
	if n == 0 || len(d) != 6+n {
		return 0, nil, false
	}
	return binary.BigEndian.Uint32(d[1:]), d[6:], true
}

func datagramRecordIndex(d []byte) (uint32, bool) { return record.DatagramReceiverIndex(d) }
