package session

import (
	"bytes"
	"errors"

	"github.com/current-vpn/current/session/record"
)

// readStream routes received bytes: into the plaintext framing until the
// handshake installed keys, into the protected record reader afterwards.
// The switch happens at the exact byte where the peer's protected records
// begin, since each side sends exactly one plaintext message.
func (s *Session) readStream(b []byte) error {
	if !s.recvKeyed {
		if len(s.plain)+len(b) > maxBufferedStream {
			return ErrTooLarge
		}
		s.plain = append(s.plain, b...)
		for !s.recvKeyed {
			frag, n, err := nextPlainRecord(s.plain)
			if err != nil || n == 0 {
				return err
			}
			if err := s.hs.add(frag); err != nil {
				return err
			}
			s.plain = s.plain[n:]
			if err := s.drainControl(); err != nil || s.phase == phaseClosed {
				return err
			}
		}
		if s.hs.pending() {
			// Part of a further message was sent in the clear.
			return ErrUnexpectedMessage
		}
		b, s.plain = s.plain, nil
	}
	for {
		n := s.reader.Feed(b)
		b = b[n:]
		got := false
		for {
			ct, content, err := s.reader.Next()
			if errors.Is(err, record.ErrNeedMore) {
				break
			}
			if err != nil {
				return err
			}
			got = true
			if err := s.onRecord(ct, content); err != nil || s.phase == phaseClosed {
				return err
			}
		}
		if len(b) == 0 {
			return nil
		}
		if n == 0 && !got {
			return errNoProgress
		}
	}
}

// onRecord handles one opened record. content aliases the reader's buffer,
// so anything kept is copied.
func (s *Session) onRecord(ct record.ContentType, content []byte) error {
	switch ct {
	case record.ContentApplicationData:
		if s.sink != nil {
			s.sink(content)
		} else {
			s.packets = append(s.packets, bytes.Clone(content))
		}
		s.epochBytes += uint64(len(content))
		return s.checkPolicy()
	case record.ContentHandshake:
		if err := s.hs.add(content); err != nil {
			return err
		}
		return s.drainControl()
	}
	// TLS alerts are not part of this protocol; failures travel as Alert
	// control messages.
	return ErrBadRecord
}

// drainControl handles every complete envelope buffered so far.
func (s *Session) drainControl() error {
	for s.phase != phaseClosed {
		msg, err := s.hs.next()
		if err != nil || msg == nil {
			return err
		}
		m, err := DecodeControl(msg)
		if err != nil {
			return err
		}
		if err := s.handle(m, msg); err != nil {
			return err
		}
	}
	return nil
}

// sendControl queues m in plaintext records before the send keys exist and
// in protected handshake records afterwards.
func (s *Session) sendControl(m Message) error {
	b, err := EncodeControl(m)
	if err != nil {
		return err
	}
	return s.sendEnvelope(m.Type(), b)
}

// sendEnvelope is sendControl for a message already encoded as b.
func (s *Session) sendEnvelope(t MsgType, b []byte) error {
	t, b, err := s.sealAnswerEnvelope(t, b)
	if err != nil {
		return err
	}
	if s.cfg.Transport == Datagram {
		return s.dgSendControl(t, b)
	}
	if !s.sendKeyed() {
		s.out = appendPlainRecords(s.out, b)
		return nil
	}
	s.out, err = appendProtected(s.out, s.writer, record.ContentHandshake, b)
	return err
}

func (s *Session) sendKeyed() bool { return s.phase == phaseEstablished }
