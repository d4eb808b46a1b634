package session

import (
	"errors"
	"fmt"
)

// phase is where the session stands. Every control message is accepted in
// exactly one phase (and role); anything else is a protocol violation, so
// a message can never be replayed into a later stage of the protocol.
type phase uint8

const (
	phaseIdle phase = iota
	phaseWaitHello
	phaseEstablished
	phaseClosed
)

// handle dispatches one decoded control message by phase and role; env is
// its envelope.
func (s *Session) handle(m Message, env []byte) error {
	if s.plainRefused(m.Type()) {
		return fmt.Errorf("%w: %s", ErrPlaintextHello, m.Type())
	}
	if ok, err := s.hidingMessage(m, env, 0); ok {
		if errors.Is(err, ErrDropped) && !s.hide.inner {
			// On a reliable stream nothing is stale or duplicated.
			return fmt.Errorf("%w: %v", ErrUnexpectedMessage, err)
		}
		return err
	}
	switch m := m.(type) {
	case *ClientHello:
		if s.cfg.Role == Responder && s.phase == phaseWaitHello {
			if s.group != nil {
				// A restored responder: the peer fell back from
				// resumption to a fresh handshake.
				s.abandonResume()
			}
			return s.onClientHello(m)
		}
		if s.cfg.Role == Initiator {
			return fmt.Errorf("%w (%w)", ErrSimultaneousOpen, ErrUnexpectedMessage)
		}
	case *ResumptionRequest:
		if s.cfg.Role == Responder && s.phase == phaseWaitHello {
			// A request we cannot serve (no group, another epoch) is
			// rejected, and the initiator's ClientHello follows.
			if err := s.onResumptionRequest(m, env, 0); err != nil && !errors.Is(err, ErrDropped) {
				return err
			}
			return nil
		}
	case *ResumptionReject:
		if s.rejectsOurs(m) {
			if !s.res.active {
				// It crossed our fallback after ResumeTimeout; the
				// ServerHello to our ClientHello follows.
				return nil
			}
			return s.resumeFallback()
		}
	case *ResumptionResponse:
		if s.cfg.Role == Initiator && s.phase == phaseWaitHello && s.res.active {
			if err := s.onResumptionResponse(m, 0); errors.Is(err, ErrDropped) {
				// On a reliable stream nothing is stale: refuse.
				return fmt.Errorf("%w: %v", errBadUpdate, err)
			} else if err != nil {
				return err
			}
			return nil
		}
	case *ServerHello:
		if s.cfg.Role == Initiator && s.phase == phaseWaitHello && s.kp != nil {
			return s.onServerHello(m)
		}
	case *ConnectionUpdate:
		if s.phase == phaseEstablished {
			return s.onConnectionUpdate(m)
		}
	case *EpochKeyUpdate:
		if s.phase == phaseEstablished {
			return s.onEpochKeyUpdate(m)
		}
	case *Alert:
		s.shutdown(&AlertError{Code: m.Code})
		return nil
	case *Close:
		s.shutdown(ErrPeerClosed)
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnexpectedMessage, m.Type())
}
