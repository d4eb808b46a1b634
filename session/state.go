package session

import "fmt"

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

// handle dispatches one decoded control message by phase and role.
func (s *Session) handle(m Message) error {
	switch m := m.(type) {
	case *ClientHello:
		if s.cfg.Role == Responder && s.phase == phaseWaitHello {
			return s.onClientHello(m)
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
