package session

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
)

// Role says which side of the two-party profile a Session plays.
type Role uint8

const (
	Initiator Role = iota + 1
	Responder
)

// Config configures one Session.
type Config struct {
	Role  Role
	Suite mls.CipherSuiteID
	// SigningKey is our MLS signature private key; PeerPublicKey is the
	// peer's signature public key, pinned out of band. Pinning replaces an
	// Authentication Service: no other key is ever accepted.
	SigningKey    []byte
	PeerPublicKey []byte
	// Rand supplies the group ID's randomness; nil means crypto/rand. The
	// MLS engine draws its own key material from crypto/rand regardless.
	Rand io.Reader
}

// Errors a Session reports.
var (
	ErrUnknownPeer       = errors.New("session: peer signature key is not the pinned key")
	ErrClosed            = errors.New("session: closed")
	ErrNotEstablished    = errors.New("session: not established")
	ErrUpdatePending     = errors.New("session: an update is already awaiting its EpochKeyUpdate")
	ErrUnexpectedMessage = errors.New("session: unexpected control message")
	ErrPeerClosed        = errors.New("session: peer closed the session")
	ErrLocalClose        = errors.New("session: closed locally")
	ErrPacketSize        = errors.New("session: packet size out of range")
	ErrSuiteMismatch     = errors.New("session: cipher suite mismatch")
	ErrBadConfig         = errors.New("session: invalid configuration")
	errNoProgress        = errors.New("session: stream reader made no progress")
)

// AlertError is how a peer's Alert surfaces in Closed.Reason.
type AlertError struct{ Code AlertCode }

func (e *AlertError) Error() string { return fmt.Sprintf("session: peer alert %d", e.Code) }

// Event is something the caller must learn about: Established,
// EpochChanged or Closed.
type Event interface{ isEvent() }

// Established: record keys of Epoch are installed; packets may flow.
type Established struct{ Epoch uint64 }

// EpochChanged: the MLS group moved to Epoch and record keys follow it.
type EpochChanged struct{ Epoch uint64 }

// Closed: the session is over; Reason says why.
type Closed struct{ Reason error }

func (Established) isEvent()  {}
func (EpochChanged) isEvent() {}
func (Closed) isEvent()       {}

// Session is the sans-IO core of one stream-mode connection: the caller
// feeds it received bytes and the time, and collects the bytes to write,
// the decrypted packets and the events. It never blocks, reads a clock or
// starts goroutines, so the same code runs under a test driver and a real
// event loop. A Session is not safe for concurrent use.
type Session struct {
	cfg    Config
	suite  *mls.CipherSuite
	rsuite record.Suite
	ownPub []byte
	now    time.Time
	phase  phase

	group *mls.Group
	// The initiator's KeyPackage and its secrets, until the Welcome.
	kp        *mls.KeyPackage
	kpSecrets *mls.KeyPackageSecrets
	// newGroupID makes the responder's group ID; tests replace it to build
	// groups that lack the CURRENT binding.
	newGroupID func(io.Reader) ([]byte, error)

	writer    *record.StreamWriter
	reader    *record.StreamReader
	recvKeyed bool
	plain     []byte // received bytes while still unprotected
	hs        handshakeBuffer
	// waiting: our ConnectionUpdate awaits the peer's EpochKeyUpdate.
	waiting bool
	// nextRecv are the peer's keys of an epoch we moved into by applying its
	// commit, held until its EpochKeyUpdate marks where it switched.
	nextRecv *record.TrafficKeys

	out     [][]byte
	packets [][]byte
	events  []Event
}

// New checks cfg and returns a Session that has sent nothing yet.
func New(cfg Config) (*Session, error) {
	if cfg.Role != Initiator && cfg.Role != Responder {
		return nil, fmt.Errorf("%w: role %d", ErrBadConfig, cfg.Role)
	}
	s, err := mls.Suite(cfg.Suite)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	aead, ok := record.AEADFromHPKE(s.AEADID)
	if !ok {
		return nil, fmt.Errorf("%w: suite %s has no record AEAD", ErrBadConfig, s.Name)
	}
	pub, err := s.SignaturePublicKey(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("%w: signing key: %v", ErrBadConfig, err)
	}
	if len(cfg.PeerPublicKey) == 0 {
		return nil, fmt.Errorf("%w: no pinned peer key", ErrBadConfig)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	cfg.SigningKey = bytes.Clone(cfg.SigningKey)
	cfg.PeerPublicKey = bytes.Clone(cfg.PeerPublicKey)
	return &Session{
		cfg:        cfg,
		suite:      s,
		rsuite:     record.Suite{AEAD: aead, Hash: s.Hash},
		ownPub:     pub,
		newGroupID: newGroupID,
		writer:     record.NewStreamWriter(record.Config{}),
		reader:     record.NewStreamReader(),
	}, nil
}

// Start begins the handshake: the initiator queues its ClientHello, the
// responder starts listening for one.
func (s *Session) Start(now time.Time) error {
	s.now = now
	if s.phase != phaseIdle {
		return s.phaseError()
	}
	s.phase = phaseWaitHello
	if s.cfg.Role == Responder {
		return nil
	}
	return s.fail(s.sendClientHello())
}

// HandleStream consumes bytes received from the transport, in order. A
// returned error is fatal: the session is closed and Outgoing may hold a
// final Alert to flush before closing the transport.
func (s *Session) HandleStream(now time.Time, b []byte) error {
	s.now = now
	if s.phase == phaseClosed {
		return ErrClosed
	}
	if s.phase == phaseIdle {
		return ErrNotEstablished
	}
	return s.fail(s.readStream(b))
}

// SendPacket seals one IP packet for the peer.
func (s *Session) SendPacket(now time.Time, ip []byte) error {
	s.now = now
	if s.phase != phaseEstablished {
		return s.phaseError()
	}
	if len(ip) == 0 || len(ip) > record.MaxPlaintext {
		return ErrPacketSize
	}
	rec, err := s.writer.SealRecord(make([]byte, 0, record.StreamOverhead+len(ip)), record.ContentApplicationData, ip, 0)
	if err != nil {
		return s.fail(err)
	}
	s.out = append(s.out, rec)
	return nil
}

// Update starts a key update (a ConnectionUpdate with a fresh commit). It
// returns ErrUpdatePending while our previous one is unconfirmed, as the
// two-party profile forbids a second.
func (s *Session) Update(now time.Time) error {
	s.now = now
	if s.phase != phaseEstablished {
		return s.phaseError()
	}
	if s.waiting {
		return ErrUpdatePending
	}
	return s.fail(s.sendUpdate())
}

// Close ends the session, telling the peer if it can be told securely.
func (s *Session) Close(now time.Time) {
	s.now = now
	if s.phase == phaseClosed {
		return
	}
	if s.phase == phaseEstablished {
		// A failure to queue Close leaves the peer to notice the transport
		// closing, which is all it would learn anyway.
		_ = s.sendControl(&Close{})
	}
	s.shutdown(ErrLocalClose)
}

// Outgoing returns the bytes to write to the transport, in order, and
// forgets them.
func (s *Session) Outgoing() [][]byte { o := s.out; s.out = nil; return o }

// Packets returns the decrypted IP packets received so far and forgets them.
func (s *Session) Packets() [][]byte { p := s.packets; s.packets = nil; return p }

// Events returns what happened since the last call and forgets it.
func (s *Session) Events() []Event { e := s.events; s.events = nil; return e }

// NextTimeout is when the caller should call Update or Close on its own.
// Phase 1 has no timers (no retransmission, no update schedule): it returns
// the zero time, meaning never.
func (s *Session) NextTimeout() time.Time { return time.Time{} }

// Epoch is the MLS epoch of the group, zero before the handshake.
func (s *Session) Epoch() uint64 {
	if s.group == nil {
		return 0
	}
	return s.group.Epoch()
}

// Established reports whether packets can be sent.
func (s *Session) Established() bool { return s.phase == phaseEstablished }

func (s *Session) phaseError() error {
	switch s.phase {
	case phaseClosed:
		return ErrClosed
	case phaseEstablished:
		return ErrUnexpectedMessage
	}
	return ErrNotEstablished
}

func (s *Session) clock() time.Time { return s.now }

// fail turns a fatal error into a closed session. The peer gets an Alert
// only under protection: before keys exist, and above all to a peer whose
// key we do not know, we stay silent so as not to reveal who we are.
func (s *Session) fail(err error) error {
	if err == nil || s.phase == phaseClosed {
		return err
	}
	if s.phase == phaseEstablished && !errors.Is(err, ErrUnknownPeer) {
		_ = s.sendControl(&Alert{Code: alertFor(err)})
	}
	s.shutdown(err)
	return err
}

func alertFor(err error) AlertCode {
	switch {
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownMessage),
		errors.Is(err, ErrUnsupportedVersion), errors.Is(err, ErrWrongWireFormat):
		return AlertDecodeError
	case errors.Is(err, errBadUpdate):
		return AlertBadUpdate
	case errors.Is(err, ErrUnexpectedMessage):
		return AlertProtocolViolation
	}
	return AlertInternalError
}

// shutdown wipes every secret the session holds.
func (s *Session) shutdown(reason error) {
	s.phase = phaseClosed
	s.writer.Close()
	s.reader.Close()
	s.nextRecv.Wipe()
	s.nextRecv = nil
	if s.kpSecrets != nil {
		s.kpSecrets.Wipe()
		s.kpSecrets = nil
	}
	if s.group != nil {
		s.group.Close()
	}
	clear(s.cfg.SigningKey)
	s.plain, s.hs.buf = nil, nil
	s.events = append(s.events, Closed{Reason: reason})
}
