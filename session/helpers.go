package session

import (
	"time"

	"github.com/current-vpn/current/session/record"
)

// Helpers for the daemon's datagram listener and timers. They add to the
// Session API without changing it.

// SendKeepalive queues an empty application_data record (one datagram in
// datagram mode), which the peer authenticates and discards: it keeps NAT
// and firewall mappings alive and tells the peer where we are now (a
// listener's endpoint follows the source of authenticated datagrams). The
// receiving Session returns it from Packets as an empty packet, which the
// caller ignores.
func (s *Session) SendKeepalive(now time.Time) error {
	s.now = now
	if s.phase != phaseEstablished {
		return s.phaseError()
	}
	var rec []byte
	var err error
	if s.cfg.Transport == Stream {
		rec, err = s.writer.SealRecord(nil, record.ContentApplicationData, nil, 0)
	} else {
		rec, err = s.dg.send.Seal(nil, record.ContentApplicationData, nil, 0)
	}
	if err != nil {
		return s.fail(err)
	}
	s.out = append(s.out, rec)
	return nil
}

// Resumed reports whether the session was established by resumption from
// Config.Resume rather than by a fresh handshake.
func (s *Session) Resumed() bool { return s.resumed }

// HandshakeFragment is the routing view of a DatagramHandshake datagram
// (a fragment of a plaintext ClientHello, ServerHello, ResumptionRequest,
// ResumptionResponse or ResumptionReject), read without cryptography.
type HandshakeFragment struct {
	Sender, Receiver uint32
	// MessageID identifies the message among the sender's; Total is its
	// length, Offset where Data goes.
	MessageID     uint32
	Total, Offset int
	Data          []byte
}

// ParseHandshakeFragment splits a DatagramHandshake datagram. A listener
// that must know who sent a ClientHello before it creates a Session (to
// find the peer by the KeyPackage's signature key) reassembles the
// fragments of one (Sender, MessageID) itself, decodes the envelope with
// DecodeControl, and then feeds every datagram to the new Session, which
// reassembles and checks them again.
func ParseHandshakeFragment(d []byte) (HandshakeFragment, bool) {
	sender, receiver, _, frag, ok := parsePlainHeader(d)
	if !ok {
		return HandshakeFragment{}, false
	}
	id, total, off, data, ok := parseFragment(frag)
	if !ok {
		return HandshakeFragment{}, false
	}
	return HandshakeFragment{Sender: sender, Receiver: receiver, MessageID: id, Total: total, Offset: off, Data: data}, true
}
