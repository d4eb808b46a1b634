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

// Transport is how a Session talks to its peer.
type Transport uint8

const (
	// Stream mode (the zero value): a reliable byte stream such as TCP.
	// HandleStream takes received bytes; Outgoing returns bytes to write
	// in order. Control messages travel in TLS handshake records.
	Stream Transport = iota
	// Datagram mode: an unreliable datagram transport such as UDP.
	// HandleDatagram takes one received datagram; every element of
	// Outgoing is one datagram to send. Control messages travel in control
	// datagrams or protected handshake records, fragmented to
	// MaxDatagramSize and retransmitted until answered.
	Datagram
)

// Defaults of Config.
const (
	// DefaultMaxDatagramSize is the IPv6 minimum MTU minus the IPv6 and UDP
	// headers: a datagram of this size crosses any IPv6 path unfragmented.
	DefaultMaxDatagramSize = 1280 - 40 - 8
	DefaultUpdateInterval  = 120 * time.Second
	DefaultUpdateBytes     = 1 << 30
	DefaultRetransmitMin   = 500 * time.Millisecond
	DefaultRetransmitMax   = 8 * time.Second
	DefaultGiveUp          = 60 * time.Second
	// DefaultResumeTimeout is how long an unanswered ResumptionRequest
	// is retried before the session falls back to a fresh handshake (a
	// ResumptionReject makes it fall back at once).
	DefaultResumeTimeout   = 4 * time.Second
	DefaultReassemblyBytes = 256 << 10
	DefaultReassemblyTime  = 10 * time.Second
	// minDatagramSize leaves room for the largest control header and a
	// useful fragment.
	minDatagramSize = 256
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
	// Rand supplies the group ID, session index and update jitter
	// randomness; nil means crypto/rand. The MLS engine draws its own key
	// material from crypto/rand regardless.
	Rand io.Reader

	// Transport selects stream (default) or datagram mode.
	Transport Transport
	// MaxDatagramSize is the largest datagram the session sends (the path
	// MTU minus IP and UDP headers); default DefaultMaxDatagramSize.
	MaxDatagramSize int
	// LocalIndex is our receiver index in datagram mode, which the peer
	// writes into every datagram it sends us; zero picks a random non-zero
	// one. A listener that demultiplexes by index chooses it itself.
	LocalIndex uint32
	// PeerIndex is the peer's receiver index, needed only to resume in
	// datagram mode (the handshake learns it otherwise).
	PeerIndex uint32

	// UpdateInterval and UpdateBytes start an update once the epoch is
	// that old (±10% random jitter) or has carried that many payload bytes
	// (both directions). Zero means the default, negative disables.
	UpdateInterval time.Duration
	UpdateBytes    int64

	// Retransmission of unanswered control messages in datagram mode: the
	// first retry after RetransmitMin, doubling up to RetransmitMax; after
	// GiveUp without an answer the session closes with ErrTimeout.
	RetransmitMin, RetransmitMax, GiveUp time.Duration
	// ReassemblyBytes caps the bytes buffered for partly received control
	// messages (at most maxReassembly messages at once); ReassemblyTime
	// drops a partial message that long after its first fragment.
	ReassemblyBytes int
	ReassemblyTime  time.Duration

	// Resume is a group saved with mls.Group.MarshalBinary (Session.State).
	// A Session with Resume set starts with the two-party profile's
	// resumption, in either transport: the initiator sends
	// ResumptionRequest, the responder answers ResumptionResponse. A
	// responder that cannot resume answers ResumptionReject, and the
	// initiator falls back to a fresh handshake at once; without any
	// answer it does after ResumeTimeout (in stream mode on the same
	// connection: the responder waits for the ClientHello that follows).
	// Two datagram initiators resuming at once resolve their crossing
	// requests by key order (docs/protocol.md 7.10).
	Resume        []byte
	ResumeTimeout time.Duration

	// Identity hiding (docs/protocol.md 7.14). HideIdentity makes an
	// initiator seal its ClientHello and ResumptionRequest to the
	// responder's hello key and take only sealed answers: PeerHelloKey
	// if it is set and still verifies against PeerPublicKey (an encoded
	// HelloKey the caller cached from an earlier session's PeerHelloKey
	// method), else a key it first asks for with a HelloKeyRequest. It
	// never sends a plaintext hello.
	HideIdentity bool
	PeerHelloKey []byte
	// HelloKeys, shared by a listener's sessions, answers HelloKeyRequests
	// and opens sealed hellos (a responder, or an initiator whose peer
	// may initiate too). A session with HelloKeys refuses plaintext hellos.
	HelloKeys *HelloKeyring
	// HelloFloor is the latest hello timestamp of this peer's that an
	// earlier session accepted or sent (Session.HelloTime): a sealed hello
	// not later than it is refused as a replay, and an initiator's next
	// hello is stamped later than it.
	HelloFloor time.Time

	// Record tunes the record layer's limits and grace period.
	Record record.Config
}

func (c *Config) setDefaults() {
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.MaxDatagramSize == 0 {
		c.MaxDatagramSize = DefaultMaxDatagramSize
	}
	if c.UpdateInterval == 0 {
		c.UpdateInterval = DefaultUpdateInterval
	}
	if c.UpdateBytes == 0 {
		c.UpdateBytes = DefaultUpdateBytes
	}
	if c.RetransmitMin <= 0 {
		c.RetransmitMin = DefaultRetransmitMin
	}
	if c.RetransmitMax <= 0 {
		c.RetransmitMax = DefaultRetransmitMax
	}
	if c.GiveUp <= 0 {
		c.GiveUp = DefaultGiveUp
	}
	if c.ResumeTimeout <= 0 {
		c.ResumeTimeout = DefaultResumeTimeout
	}
	if c.ReassemblyBytes <= 0 {
		c.ReassemblyBytes = DefaultReassemblyBytes
	}
	if c.ReassemblyTime <= 0 {
		c.ReassemblyTime = DefaultReassemblyTime
	}
	if c.Record.GracePeriod <= 0 {
		c.Record.GracePeriod = record.DefaultGracePeriod
	}
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
	// ErrBadKeyPackage: the pinned peer's ClientHello carries a KeyPackage
	// that fails validation (lifetime not covering now, signature,
	// credential, capabilities). It wraps the reason. The responder sends
	// nothing before keys exist, so the caller should count and log it:
	// it is the only trace the peer's operator will find.
	ErrBadKeyPackage = errors.New("session: KeyPackage refused")
	ErrBadConfig     = errors.New("session: invalid configuration")
	// ErrTimeout: a control message went unanswered for Config.GiveUp.
	ErrTimeout = errors.New("session: peer did not answer")
	// ErrDropped wraps the reason a datagram was dropped. A dropped
	// datagram does not end the session: anyone can forge one.
	ErrDropped = errors.New("session: datagram dropped")
	// ErrSimultaneousOpen: in stream mode an initiator received a
	// ClientHello. Each TCP connection has one dialer (initiator) and one
	// acceptor (responder), so two crossing dials are two connections, a
	// conflict only the caller can see; it keeps the one PreferOutgoing
	// picks. The error also wraps ErrUnexpectedMessage.
	ErrSimultaneousOpen = errors.New("session: ClientHello at a stream-mode initiator (simultaneous open)")
	errNoProgress       = errors.New("session: stream reader made no progress")
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

// Session is the sans-IO core of one connection, in stream or datagram
// mode: the caller feeds it received bytes or datagrams and the time, and
// collects the bytes or datagrams to send, the decrypted packets and the
// events, and calls HandleTimeout when NextTimeout is due. It never blocks,
// reads a clock or starts goroutines, so the same code runs under a test
// driver and a real event loop. A Session is not safe for concurrent use.
type Session struct {
	cfg    Config
	suite  *mls.CipherSuite
	rsuite record.Suite
	ownPub []byte
	now    time.Time
	origin time.Time
	phase  phase

	group *mls.Group
	// The initiator's KeyPackage and its secrets, until the Welcome.
	kp        *mls.KeyPackage
	kpSecrets *mls.KeyPackageSecrets
	// groupExtensions makes the responder's group context extensions;
	// tests replace it to build groups that lack the CURRENT binding.
	groupExtensions func() mls.Extensions

	// Stream mode.
	writer    *record.StreamWriter
	reader    *record.StreamReader
	recvKeyed bool
	plain     []byte // received bytes while still unprotected
	hs        handshakeBuffer
	// nextRecv are the peer's keys of an epoch we moved into by applying its
	// commit, held until its EpochKeyUpdate marks where it switched.
	nextRecv *record.TrafficKeys

	// Datagram mode (datagram.go).
	dg dgState

	// Resumption (resume.go, reject.go).
	res resumeState

	// Identity hiding (hiding.go).
	hide hideState

	// waiting: our ConnectionUpdate awaits the peer's EpochKeyUpdate.
	waiting bool
	// resumed: established by resumption (Resumed).
	resumed bool
	// resumeDeadline: in stream mode, when an unanswered ResumptionRequest
	// gives way to a fresh handshake on the same connection.
	resumeDeadline time.Time

	// Update policy (timers.go).
	nextUpdate time.Time
	epochStart time.Time
	epochBytes uint64

	// replayed counts records the replay window rejected (Stats).
	replayed uint64

	out     [][]byte
	packets [][]byte
	// sink, if set, takes received stream packets instead of packets
	// (SetPacketSink).
	sink   func(pkt []byte)
	events []Event
}

// New checks cfg and returns a Session that has sent nothing yet.
func New(cfg Config) (*Session, error) {
	if cfg.Role != Initiator && cfg.Role != Responder {
		return nil, fmt.Errorf("%w: role %d", ErrBadConfig, cfg.Role)
	}
	if cfg.Transport != Stream && cfg.Transport != Datagram {
		return nil, fmt.Errorf("%w: transport %d", ErrBadConfig, cfg.Transport)
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
	cfg.setDefaults()
	if cfg.MaxDatagramSize < minDatagramSize {
		return nil, fmt.Errorf("%w: MaxDatagramSize %d", ErrBadConfig, cfg.MaxDatagramSize)
	}
	if cfg.HelloKeys != nil && cfg.HelloKeys.suite.ID != s.ID {
		return nil, fmt.Errorf("%w: hello keys of another suite", ErrBadConfig)
	}
	if cfg.Resume != nil && cfg.Transport == Datagram && cfg.Role == Initiator && cfg.PeerIndex == 0 {
		return nil, fmt.Errorf("%w: resumption needs the peer's index", ErrBadConfig)
	}
	cfg.SigningKey = bytes.Clone(cfg.SigningKey)
	cfg.PeerPublicKey = bytes.Clone(cfg.PeerPublicKey)
	cfg.Resume = bytes.Clone(cfg.Resume)
	cfg.PeerHelloKey = bytes.Clone(cfg.PeerHelloKey)
	sess := &Session{
		cfg:             cfg,
		suite:           s,
		rsuite:          record.Suite{AEAD: aead, Hash: s.Hash},
		ownPub:          pub,
		groupExtensions: bindingExtensions,
	}
	if cfg.Transport == Stream {
		sess.writer = record.NewStreamWriter(cfg.Record)
		sess.reader = record.NewStreamReader()
		return sess, nil
	}
	if err := sess.dgInit(); err != nil {
		return nil, err
	}
	return sess, nil
}

// Start begins the session: the initiator queues its ClientHello (or its
// ResumptionRequest when resuming), the responder starts listening.
func (s *Session) Start(now time.Time) error {
	s.now, s.origin = now, now
	if s.phase != phaseIdle {
		return s.phaseError()
	}
	s.phase = phaseWaitHello
	s.hideStart()
	if s.cfg.Resume != nil {
		return s.fail(s.startResume())
	}
	if s.cfg.Role == Responder {
		return nil
	}
	return s.fail(s.sendClientHello())
}

// HandleStream consumes bytes received from the transport, in order (stream
// mode). A returned error is fatal: the session is closed and Outgoing may
// hold a final Alert to flush before closing the transport.
func (s *Session) HandleStream(now time.Time, b []byte) error {
	if err := s.receiving(now, Stream, "HandleStream"); err != nil {
		return err
	}
	return s.fail(s.readStream(b))
}

// receiving checks that input may be handed to the session in mode, and
// records the time of the call.
func (s *Session) receiving(now time.Time, mode Transport, call string) error {
	s.now = now
	if s.cfg.Transport != mode {
		return fmt.Errorf("%w: %s on a session of the other transport", ErrBadConfig, call)
	}
	if s.phase == phaseClosed {
		return ErrClosed
	}
	if s.phase == phaseIdle {
		return ErrNotEstablished
	}
	return nil
}

// SendPacket seals one IP packet for the peer: one application_data record
// on the stream, or one datagram record (at most MaxDatagramSize -
// record.DatagramOverhead bytes of packet fit without IP fragmentation).
func (s *Session) SendPacket(now time.Time, ip []byte) error {
	s.now = now
	if s.phase != phaseEstablished {
		return s.phaseError()
	}
	rec, err := s.sealPacket(make([]byte, 0, PacketOverhead(s.cfg.Transport)+len(ip)), ip)
	if err != nil {
		return err
	}
	s.out = append(s.out, rec)
	return s.fail(s.checkPolicy())
}

// PacketOverhead is how many bytes SendPacket and SealPacketTo add to an
// IP packet in each mode: the record header, the inner content type and
// the AEAD tag.
func PacketOverhead(t Transport) int {
	if t == Datagram {
		return record.DatagramOverhead
	}
	return record.StreamOverhead
}

// PacketHeadroom is the record header length: an IP packet read into
// buf[PacketHeadroom(t):] of a buffer with PacketOverhead(t) -
// PacketHeadroom(t) spare bytes at its end is sealed by SealPacketTo(now,
// buf[:0], buf[PacketHeadroom(t):PacketHeadroom(t)+n]) in place.
func PacketHeadroom(t Transport) int {
	if t == Datagram {
		return record.DatagramHeaderLen
	}
	return record.StreamHeaderLen
}

// SealPacketTo is SendPacket without the allocation and the queue: it
// appends the sealed record (one datagram, or bytes for the stream) to
// dst and returns the extended slice, which the caller sends itself. Use
// the same buffer discipline as append; if ip already sits at
// dst[len(dst)+PacketHeadroom:] and dst has PacketOverhead bytes of spare
// capacity beyond the packet, the record is sealed in place and nothing is
// copied or allocated. In stream mode the caller must write the result
// before anything Outgoing returns later, and after anything it returned
// earlier. An update the packet triggers (byte threshold, rekey) is queued
// in Outgoing as usual. Errors are those of SendPacket.
func (s *Session) SealPacketTo(now time.Time, dst, ip []byte) ([]byte, error) {
	s.now = now
	if s.phase != phaseEstablished {
		return dst, s.phaseError()
	}
	rec, err := s.sealPacket(dst, ip)
	if err != nil {
		return dst, err
	}
	return rec, s.fail(s.checkPolicy())
}

func (s *Session) sealPacket(dst, ip []byte) ([]byte, error) {
	if len(ip) == 0 || len(ip) > record.MaxPlaintext {
		return dst, ErrPacketSize
	}
	var rec []byte
	var err error
	if s.cfg.Transport == Stream {
		rec, err = s.writer.SealRecord(dst, record.ContentApplicationData, ip, 0)
	} else {
		rec, err = s.dg.send.Seal(dst, record.ContentApplicationData, ip, 0)
	}
	if err != nil {
		return dst, s.fail(err)
	}
	s.epochBytes += uint64(len(ip))
	return rec, nil
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

// Outgoing returns what to send and forgets it: in stream mode byte
// strings to write in order, in datagram mode one datagram per element.
func (s *Session) Outgoing() [][]byte { o := s.out; s.out = nil; return o }

// Packets returns the decrypted IP packets received so far and forgets them.
func (s *Session) Packets() [][]byte { p := s.packets; s.packets = nil; return p }

// SetPacketSink makes HandleStream hand each IP packet it decrypts to sink
// as soon as it is opened, instead of keeping a copy for Packets. pkt
// aliases the session's record buffer and is valid only during the call;
// sink must copy what it keeps and must not call the Session. It saves a
// copy and an allocation per packet for a caller that copies the packets
// anyway (into its own buffers). Datagram mode opens packets in the
// caller's buffers already (ReceiveDatagrams) and ignores the sink.
func (s *Session) SetPacketSink(sink func(pkt []byte)) { s.sink = sink }

// Events returns what happened since the last call and forgets it.
func (s *Session) Events() []Event { e := s.events; s.events = nil; return e }

// Epoch is the MLS epoch of the group, zero before the handshake.
func (s *Session) Epoch() uint64 {
	if s.group == nil {
		return 0
	}
	return s.group.Epoch()
}

// GroupID is the MLS group's ID, nil before the handshake: what a
// listener maps a sealed ResumptionRequest (OpenedHello.GroupID) back to
// the peer by.
func (s *Session) GroupID() []byte {
	if s.group == nil {
		return nil
	}
	return s.group.GroupID()
}

// SessionStats are a session's counters.
type SessionStats struct {
	// Replayed counts protected datagrams dropped by the anti-replay
	// window: a sequence number already received (record.ErrReplay) or
	// left of the window (record.ErrTooOld). Always 0 in stream mode,
	// where TCP does not duplicate.
	Replayed uint64
}

// Stats returns the session's counters; they survive Close.
func (s *Session) Stats() SessionStats { return SessionStats{Replayed: s.replayed} }

// Established reports whether packets can be sent.
func (s *Session) Established() bool { return s.phase == phaseEstablished }

// Role is the session's current role; a simultaneous open may turn an
// initiator into a responder.
func (s *Session) Role() Role { return s.cfg.Role }

// State returns the MLS group in the form Config.Resume takes, for the
// caller to persist; nil before the handshake.
func (s *Session) State() ([]byte, error) {
	if s.group == nil || s.phase == phaseClosed {
		return nil, ErrNotEstablished
	}
	return s.group.MarshalBinary()
}

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
	if err == nil || s.phase == phaseClosed || errors.Is(err, ErrDropped) {
		return err
	}
	if s.phase == phaseEstablished && !errors.Is(err, ErrUnknownPeer) {
		_ = s.sendControl(&Alert{Code: alertFor(err)})
	}
	s.shutdown(err)
	return err
}

// alertFor names a fatal error's Alert code (docs/protocol.md 7.12). The
// record layer's failures keep their TLS meaning: record_overflow and a
// malformed header are decoding errors, bad_record_mac has its own code,
// and an invalid inner plaintext or a content type other than handshake
// and application_data is TLS's unexpected_message, our
// protocol_violation. internal_error is for our own failures only.
func alertFor(err error) AlertCode {
	switch {
	case errors.Is(err, record.ErrBadRecordMAC):
		return AlertBadRecordMAC
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownMessage),
		errors.Is(err, ErrUnsupportedVersion), errors.Is(err, ErrWrongWireFormat),
		errors.Is(err, ErrTooLarge),
		errors.Is(err, record.ErrRecordOverflow), errors.Is(err, record.ErrMalformed):
		return AlertDecodeError
	case errors.Is(err, errBadUpdate):
		return AlertBadUpdate
	case errors.Is(err, ErrUnexpectedMessage), errors.Is(err, ErrBadRecord),
		errors.Is(err, record.ErrUnexpectedMessage):
		return AlertProtocolViolation
	}
	return AlertInternalError
}

// shutdown wipes every secret the session holds.
func (s *Session) shutdown(reason error) {
	s.phase = phaseClosed
	if s.writer != nil {
		s.writer.Close()
		s.reader.Close()
	}
	s.dgClose()
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
	clear(s.cfg.Resume)
	s.hide.wipe()
	s.plain, s.hs.buf = nil, nil
	s.nextUpdate, s.resumeDeadline = time.Time{}, time.Time{}
	s.events = append(s.events, Closed{Reason: reason})
}
