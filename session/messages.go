package session

import (
	"errors"
	"fmt"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/mls/wire"
)

// ProtocolVersion is the version of the session protocol carried in every
// control envelope and bound into the MLS group (see binding.go). A peer
// speaking another version is refused rather than guessed at. Version 2 is
// protocol 1.1, which adds identity hiding (hello keys and sealed hellos,
// docs/protocol.md 7.14); a version-1 envelope is refused.
const ProtocolVersion uint16 = 2

// MsgType is the msg_type of a control envelope.
type MsgType uint8

const (
	MsgClientHello      MsgType = 1
	MsgServerHello      MsgType = 2
	MsgConnectionUpdate MsgType = 3
	MsgEpochKeyUpdate   MsgType = 4
	MsgAlert            MsgType = 5
	MsgClose            MsgType = 6
	// Resumption (both modes): each side commits a self-update to a
	// group both kept from an earlier session, or the responder says it
	// cannot.
	MsgResumptionRequest  MsgType = 7
	MsgResumptionResponse MsgType = 8
	MsgResumptionReject   MsgType = 9
	// Identity hiding (sealed.go): the responder's hello key on request,
	// and the hellos and their answers sealed under it.
	MsgHelloKeyRequest MsgType = 10
	MsgHelloKeyAnswer  MsgType = 11
	MsgSealedHello     MsgType = 12
	MsgSealedAnswer    MsgType = 13
)

func (t MsgType) String() string {
	switch t {
	case MsgClientHello:
		return "ClientHello"
	case MsgServerHello:
		return "ServerHello"
	case MsgConnectionUpdate:
		return "ConnectionUpdate"
	case MsgEpochKeyUpdate:
		return "EpochKeyUpdate"
	case MsgAlert:
		return "Alert"
	case MsgClose:
		return "Close"
	case MsgResumptionRequest:
		return "ResumptionRequest"
	case MsgResumptionResponse:
		return "ResumptionResponse"
	case MsgResumptionReject:
		return "ResumptionReject"
	case MsgHelloKeyRequest:
		return "HelloKeyRequest"
	case MsgHelloKeyAnswer:
		return "HelloKeyAnswer"
	case MsgSealedHello:
		return "SealedHello"
	case MsgSealedAnswer:
		return "SealedAnswer"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// maxControlLen bounds one envelope. The largest legitimate message is a
// ServerHello of a post-quantum suite (tens of KiB); a bound keeps a hostile
// peer from making us buffer without limit while it dribbles in a body.
const maxControlLen = 1 << 20

// Decoding errors. They are sentinels wrapped with detail so that callers can
// classify a failure with errors.Is without parsing text.
var (
	ErrUnsupportedVersion = errors.New("session: unsupported control protocol version")
	ErrUnknownMessage     = errors.New("session: unknown control message type")
	ErrMalformed          = errors.New("session: malformed control message")
	ErrWrongWireFormat    = errors.New("session: MLS message of the wrong wire format")
	ErrTooLarge           = errors.New("session: control message too large")
)

// Message is one control message: ClientHello, ServerHello,
// ConnectionUpdate, EpochKeyUpdate, Alert, Close, ResumptionRequest,
// ResumptionResponse, ResumptionReject, HelloKeyRequest, HelloKeyAnswer,
// SealedHello or SealedAnswer.
type Message interface {
	Type() MsgType
	marshalBody(w *wire.Writer)
	unmarshalBody(r *wire.Reader)
}

// ClientHello opens the handshake with the initiator's KeyPackage.
type ClientHello struct{ KeyPackage *mls.MLSMessage }

// ServerHello answers with the Welcome into the responder's new group.
type ServerHello struct{ Welcome *mls.MLSMessage }

// ConnectionUpdate carries a commit with an UpdatePath.
type ConnectionUpdate struct{ Commit *mls.MLSMessage }

// EpochKeyUpdate confirms a ConnectionUpdate and marks where its sender's
// records switch to the keys of Epoch.
type EpochKeyUpdate struct{ Epoch uint64 }

// Alert reports a fatal error before the connection closes.
type Alert struct {
	Code   AlertCode
	Reason []byte
}

// Close ends the session in an orderly way.
type Close struct{}

// ResumptionRequest resumes a persisted group: the commit is the sender's
// self-update from the persisted epoch.
type ResumptionRequest struct{ Commit *mls.MLSMessage }

// ResumptionResponse applies the request's commit and adds the
// responder's own self-update on top.
type ResumptionResponse struct{ Commit *mls.MLSMessage }

// ResumptionReject tells a resuming initiator that the peer cannot apply
// its ResumptionRequest, so that it handshakes afresh at once instead of
// after ResumeTimeout. It is unauthenticated; RequestHash, the SHA-256 of
// the exact request envelope it answers, is what binds it to that request
// (docs/protocol.md 7.10).
type ResumptionReject struct{ RequestHash [32]byte }

// AlertCode says why a peer gave up.
type AlertCode uint16

const (
	AlertProtocolViolation AlertCode = 1
	AlertDecodeError       AlertCode = 2
	AlertBadUpdate         AlertCode = 3
	AlertInternalError     AlertCode = 4
	// AlertBadRecordMAC: a protected stream record failed authentication
	// (TLS's bad_record_mac). Sent under our own keys, which still work.
	AlertBadRecordMAC AlertCode = 5
)

func (*ClientHello) Type() MsgType        { return MsgClientHello }
func (*ServerHello) Type() MsgType        { return MsgServerHello }
func (*ConnectionUpdate) Type() MsgType   { return MsgConnectionUpdate }
func (*EpochKeyUpdate) Type() MsgType     { return MsgEpochKeyUpdate }
func (*Alert) Type() MsgType              { return MsgAlert }
func (*Close) Type() MsgType              { return MsgClose }
func (*ResumptionRequest) Type() MsgType  { return MsgResumptionRequest }
func (*ResumptionResponse) Type() MsgType { return MsgResumptionResponse }
func (*ResumptionReject) Type() MsgType   { return MsgResumptionReject }

func (m *ResumptionRequest) marshalBody(w *wire.Writer)  { marshalMLS(w, m.Commit) }
func (m *ResumptionResponse) marshalBody(w *wire.Writer) { marshalMLS(w, m.Commit) }
func (m *ResumptionRequest) unmarshalBody(r *wire.Reader) {
	m.Commit = unmarshalMLS(r, mls.WireFormatPublicMessage)
}
func (m *ResumptionResponse) unmarshalBody(r *wire.Reader) {
	m.Commit = unmarshalMLS(r, mls.WireFormatPublicMessage)
}
func (m *ResumptionReject) marshalBody(w *wire.Writer) { w.Raw(m.RequestHash[:]) }
func (m *ResumptionReject) unmarshalBody(r *wire.Reader) {
	copy(m.RequestHash[:], r.Raw(len(m.RequestHash)))
}

func (m *ClientHello) marshalBody(w *wire.Writer)      { marshalMLS(w, m.KeyPackage) }
func (m *ServerHello) marshalBody(w *wire.Writer)      { marshalMLS(w, m.Welcome) }
func (m *ConnectionUpdate) marshalBody(w *wire.Writer) { marshalMLS(w, m.Commit) }
func (m *EpochKeyUpdate) marshalBody(w *wire.Writer)   { w.U64(m.Epoch) }
func (m *Alert) marshalBody(w *wire.Writer) {
	w.U16(uint16(m.Code))
	w.Opaque(m.Reason)
}
func (*Close) marshalBody(*wire.Writer) {}

func (m *ClientHello) unmarshalBody(r *wire.Reader) {
	m.KeyPackage = unmarshalMLS(r, mls.WireFormatKeyPackage)
}
func (m *ServerHello) unmarshalBody(r *wire.Reader) {
	m.Welcome = unmarshalMLS(r, mls.WireFormatWelcome)
}
func (m *ConnectionUpdate) unmarshalBody(r *wire.Reader) {
	m.Commit = unmarshalMLS(r, mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage)
}
func (m *EpochKeyUpdate) unmarshalBody(r *wire.Reader) { m.Epoch = r.U64() }
func (m *Alert) unmarshalBody(r *wire.Reader) {
	m.Code = AlertCode(r.U16())
	m.Reason = r.Opaque()
}
func (*Close) unmarshalBody(*wire.Reader) {}

func marshalMLS(w *wire.Writer, m *mls.MLSMessage) {
	if m == nil {
		w.Fail(fmt.Errorf("%w: missing MLS message", ErrMalformed))
		return
	}
	m.MarshalMLS(w)
}

// unmarshalMLS decodes the MLSMessage that fills the rest of the body and
// insists on one of the wire formats the message type allows, so a Welcome
// can never be smuggled in where a commit is expected.
func unmarshalMLS(r *wire.Reader, formats ...mls.WireFormat) *mls.MLSMessage {
	m := new(mls.MLSMessage)
	m.UnmarshalMLS(r)
	if r.Err() != nil {
		return nil
	}
	for _, f := range formats {
		if m.WireFormat == f {
			return m
		}
	}
	r.Fail(fmt.Errorf("%w: %d", ErrWrongWireFormat, m.WireFormat))
	return nil
}

func newMessage(t MsgType) Message {
	switch t {
	case MsgClientHello:
		return new(ClientHello)
	case MsgServerHello:
		return new(ServerHello)
	case MsgConnectionUpdate:
		return new(ConnectionUpdate)
	case MsgEpochKeyUpdate:
		return new(EpochKeyUpdate)
	case MsgAlert:
		return new(Alert)
	case MsgClose:
		return new(Close)
	case MsgResumptionRequest:
		return new(ResumptionRequest)
	case MsgResumptionResponse:
		return new(ResumptionResponse)
	case MsgResumptionReject:
		return new(ResumptionReject)
	case MsgHelloKeyRequest:
		return new(HelloKeyRequest)
	case MsgHelloKeyAnswer:
		return new(HelloKeyAnswer)
	case MsgSealedHello:
		return new(SealedHello)
	case MsgSealedAnswer:
		return new(SealedAnswer)
	}
	return nil
}

// EncodeControl returns the envelope of m:
//
//	struct {
//	    uint16 version;   // ProtocolVersion
//	    uint8  msg_type;  // MsgType
//	    opaque body<V>;   // the message, MLS variable-length vector
//	} ControlMessage;
func EncodeControl(m Message) ([]byte, error) {
	body := wire.NewWriter(nil)
	m.marshalBody(body)
	b, err := body.Bytes()
	if err != nil {
		return nil, err
	}
	if len(b) > maxControlLen {
		return nil, ErrTooLarge
	}
	w := wire.NewWriter(make([]byte, 0, len(b)+7))
	w.U16(ProtocolVersion)
	w.U8(uint8(m.Type()))
	w.Opaque(b)
	return w.Bytes()
}

// DecodeControl parses exactly one envelope. Every way the input can be
// wrong yields an error wrapping one of the sentinels above.
func DecodeControl(b []byte) (Message, error) {
	n, err := controlLen(b)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > len(b) {
		return nil, fmt.Errorf("%w: truncated envelope", ErrMalformed)
	}
	if n < len(b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-n)
	}
	m := newMessage(MsgType(b[2]))
	r := wire.NewReader(b[3:])
	body := r.Opaque()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	br := wire.NewReader(body)
	m.unmarshalBody(br)
	if err := br.Finish(); err != nil {
		if errors.Is(err, ErrWrongWireFormat) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.Type(), err)
	}
	return m, nil
}

// controlLen returns the length of the envelope at the front of b as soon as
// its header is in, or 0 if more bytes are needed to know it. It rejects a
// bad version or type from the first three bytes, before any body arrives.
func controlLen(b []byte) (int, error) {
	if len(b) < 3 {
		return 0, nil
	}
	if v := uint16(b[0])<<8 | uint16(b[1]); v != ProtocolVersion {
		return 0, fmt.Errorf("%w: %d", ErrUnsupportedVersion, v)
	}
	if newMessage(MsgType(b[2])) == nil {
		return 0, fmt.Errorf("%w: %d", ErrUnknownMessage, b[2])
	}
	body, n, err := wire.ParseVarint(b[3:])
	if errors.Is(err, wire.ErrTruncated) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if body > maxControlLen {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, body)
	}
	return 3 + n + int(body), nil
}
