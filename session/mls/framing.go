package mls

import (
	"errors"
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// WireFormat says which message an MLSMessage carries (RFC 9420 section 6,
// IANA "MLS Wire Formats").
type WireFormat uint16

const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

// ContentType says what a framed message carries (RFC 9420 section 6).
type ContentType uint8

const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

func (t ContentType) valid() bool { return t >= ContentTypeApplication && t <= ContentTypeCommit }

// SenderType says whose key signs a framed message (RFC 9420 section 6).
type SenderType uint8

const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// Sender identifies the author of a framed message (RFC 9420 section 6).
// LeafIndex is encoded for members, SenderIndex (an index into the
// external_senders extension) for external senders; new members send neither
// because their key travels in the message itself.
type Sender struct {
	SenderType  SenderType
	LeafIndex   LeafIndex
	SenderIndex uint32
}

func (s *Sender) MarshalMLS(w *wire.Writer) {
	w.U8(uint8(s.SenderType))
	switch s.SenderType {
	case SenderTypeMember:
		w.U32(uint32(s.LeafIndex))
	case SenderTypeExternal:
		w.U32(s.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		w.Fail(fmt.Errorf("mls: cannot encode Sender.sender_type %d", s.SenderType))
	}
}

func (s *Sender) UnmarshalMLS(r *wire.Reader) {
	*s = Sender{SenderType: SenderType(r.U8())}
	switch s.SenderType {
	case SenderTypeMember:
		s.LeafIndex = LeafIndex(r.U32())
	case SenderTypeExternal:
		s.SenderIndex = r.U32()
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		r.Failf("mls: invalid Sender.sender_type %d", s.SenderType)
	}
}

// marshalContentBody writes the select on content_type shared by
// FramedContent and PrivateMessageContent (RFC 9420 sections 6 and 6.3.1).
func marshalContentBody(w *wire.Writer, what string, ct ContentType, app []byte, p *Proposal, c *Commit) {
	switch ct {
	case ContentTypeApplication:
		w.Opaque(app)
	case ContentTypeProposal:
		marshalOrZero(w, p)
	case ContentTypeCommit:
		marshalOrZero(w, c)
	default:
		w.Fail(fmt.Errorf("mls: cannot encode %s.content_type %d", what, ct))
	}
}

func unmarshalContentBody(r *wire.Reader, what string, ct ContentType, app *[]byte, p **Proposal, c **Commit) {
	switch ct {
	case ContentTypeApplication:
		*app = r.Opaque()
	case ContentTypeProposal:
		*p = new(Proposal)
		(*p).UnmarshalMLS(r)
	case ContentTypeCommit:
		*c = new(Commit)
		(*c).UnmarshalMLS(r)
	default:
		r.Failf("mls: invalid %s.content_type %d", what, ct)
	}
}

// FramedContent is the content of a handshake or application message before
// protection (RFC 9420 section 6). The field matching ContentType holds the
// body. AuthenticatedData is application data bound to the message but not
// encrypted.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

func (c *FramedContent) MarshalMLS(w *wire.Writer) {
	w.Opaque(c.GroupID)
	w.U64(c.Epoch)
	c.Sender.MarshalMLS(w)
	w.Opaque(c.AuthenticatedData)
	w.U8(uint8(c.ContentType))
	marshalContentBody(w, "FramedContent", c.ContentType, c.ApplicationData, c.Proposal, c.Commit)
}

func (c *FramedContent) UnmarshalMLS(r *wire.Reader) {
	*c = FramedContent{}
	c.GroupID = r.Opaque()
	c.Epoch = r.U64()
	c.Sender.UnmarshalMLS(r)
	c.AuthenticatedData = r.Opaque()
	c.ContentType = ContentType(r.U8())
	unmarshalContentBody(r, "FramedContent", c.ContentType, &c.ApplicationData, &c.Proposal, &c.Commit)
}

// FramedContentAuthData authenticates a FramedContent (RFC 9420 section
// 6.1). ConfirmationTag is present only for commits, so the encoding depends
// on a content type held elsewhere: use MarshalMLSFor and UnmarshalMLSFor.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte
}

// MarshalMLSFor writes the auth data of content of type ct.
func (a *FramedContentAuthData) MarshalMLSFor(w *wire.Writer, ct ContentType) {
	if !ct.valid() {
		w.Fail(fmt.Errorf("mls: cannot encode FramedContentAuthData for content_type %d", ct))
		return
	}
	w.Opaque(a.Signature)
	if ct == ContentTypeCommit {
		w.Opaque(a.ConfirmationTag)
	}
}

// UnmarshalMLSFor reads the auth data of content of type ct.
func (a *FramedContentAuthData) UnmarshalMLSFor(r *wire.Reader, ct ContentType) {
	*a = FramedContentAuthData{}
	if !ct.valid() {
		r.Failf("mls: invalid content_type %d for FramedContentAuthData", ct)
		return
	}
	a.Signature = r.Opaque()
	if ct == ContentTypeCommit {
		a.ConfirmationTag = r.Opaque()
	}
}

// AuthenticatedContent is a FramedContent with its authentication and the
// wire format it is sent in (RFC 9420 section 6). It is never sent itself;
// its encoding is what ProposalRef and the transcript hash cover.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

func (a *AuthenticatedContent) MarshalMLS(w *wire.Writer) {
	if a.WireFormat != WireFormatPublicMessage && a.WireFormat != WireFormatPrivateMessage {
		w.Fail(fmt.Errorf("mls: cannot encode AuthenticatedContent.wire_format %d", a.WireFormat))
	}
	w.U16(uint16(a.WireFormat))
	a.Content.MarshalMLS(w)
	a.Auth.MarshalMLSFor(w, a.Content.ContentType)
}

// UnmarshalMLS accepts only the public and private message wire formats, the
// only two that carry framed content.
func (a *AuthenticatedContent) UnmarshalMLS(r *wire.Reader) {
	a.WireFormat = WireFormat(r.U16())
	if r.Err() == nil && a.WireFormat != WireFormatPublicMessage && a.WireFormat != WireFormatPrivateMessage {
		r.Failf("mls: invalid AuthenticatedContent.wire_format %d", a.WireFormat)
	}
	a.Content.UnmarshalMLS(r)
	a.Auth.UnmarshalMLSFor(r, a.Content.ContentType)
}

// PublicMessage is a signed but unencrypted message (RFC 9420 section 6.2).
// MembershipTag, which proves group membership, is encoded only when the
// sender is a member.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

func (m *PublicMessage) MarshalMLS(w *wire.Writer) {
	m.Content.MarshalMLS(w)
	m.Auth.MarshalMLSFor(w, m.Content.ContentType)
	if m.Content.Sender.SenderType == SenderTypeMember {
		w.Opaque(m.MembershipTag)
	}
}

func (m *PublicMessage) UnmarshalMLS(r *wire.Reader) {
	*m = PublicMessage{}
	m.Content.UnmarshalMLS(r)
	m.Auth.UnmarshalMLSFor(r, m.Content.ContentType)
	if m.Content.Sender.SenderType == SenderTypeMember {
		m.MembershipTag = r.Opaque()
	}
}

// PrivateMessage is a signed and encrypted message (RFC 9420 section 6.3).
// Only the fields before EncryptedSenderData are in the clear; the sender and
// the content are inside the two ciphertexts.
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

func (m *PrivateMessage) MarshalMLS(w *wire.Writer) {
	if !m.ContentType.valid() {
		w.Fail(fmt.Errorf("mls: cannot encode PrivateMessage.content_type %d", m.ContentType))
	}
	w.Opaque(m.GroupID)
	w.U64(m.Epoch)
	w.U8(uint8(m.ContentType))
	w.Opaque(m.AuthenticatedData)
	w.Opaque(m.EncryptedSenderData)
	w.Opaque(m.Ciphertext)
}

func (m *PrivateMessage) UnmarshalMLS(r *wire.Reader) {
	m.GroupID = r.Opaque()
	m.Epoch = r.U64()
	m.ContentType = ContentType(r.U8())
	if r.Err() == nil && !m.ContentType.valid() {
		r.Failf("mls: invalid PrivateMessage.content_type %d", m.ContentType)
	}
	m.AuthenticatedData = r.Opaque()
	m.EncryptedSenderData = r.Opaque()
	m.Ciphertext = r.Opaque()
}

// SenderData is the plaintext of PrivateMessage.encrypted_sender_data (RFC
// 9420 section 6.3.2): which leaf sent the message and which ratchet
// generation's key encrypts it. ReuseGuard is XORed into the nonce so a
// sender that lost its ratchet state does not reuse one.
type SenderData struct {
	LeafIndex  LeafIndex
	Generation uint32
	ReuseGuard [4]byte
}

func (s *SenderData) MarshalMLS(w *wire.Writer) {
	w.U32(uint32(s.LeafIndex))
	w.U32(s.Generation)
	w.Raw(s.ReuseGuard[:])
}

func (s *SenderData) UnmarshalMLS(r *wire.Reader) {
	s.LeafIndex = LeafIndex(r.U32())
	s.Generation = r.U32()
	copy(s.ReuseGuard[:], r.Raw(4))
}

// PrivateMessageContent is the plaintext of PrivateMessage.ciphertext (RFC
// 9420 section 6.3.1). Its content type is not encoded (it travels in the
// PrivateMessage), so decoding takes it as a parameter; ContentType here is
// what MarshalMLS uses. Padding counts the zero bytes that follow auth: any
// other padding would be a covert channel, and the RFC requires rejecting it.
type PrivateMessageContent struct {
	ContentType     ContentType
	ApplicationData []byte
	Proposal        *Proposal
	Commit          *Commit
	Auth            FramedContentAuthData
	Padding         int
}

var errNonzeroPadding = errors.New("mls: PrivateMessageContent.padding holds a nonzero byte")

func (c *PrivateMessageContent) MarshalMLS(w *wire.Writer) {
	marshalContentBody(w, "PrivateMessageContent", c.ContentType, c.ApplicationData, c.Proposal, c.Commit)
	c.Auth.MarshalMLSFor(w, c.ContentType)
	if c.Padding < 0 || c.Padding > wire.MaxVarint {
		w.Fail(fmt.Errorf("mls: cannot encode PrivateMessageContent.padding of %d bytes", c.Padding))
		return
	}
	w.Raw(make([]byte, c.Padding))
}

// UnmarshalMLSFor decodes content of type ct. The padding runs to the end of
// the input, so r must hold exactly one PrivateMessageContent.
func (c *PrivateMessageContent) UnmarshalMLSFor(r *wire.Reader, ct ContentType) {
	*c = PrivateMessageContent{ContentType: ct}
	unmarshalContentBody(r, "PrivateMessageContent", ct, &c.ApplicationData, &c.Proposal, &c.Commit)
	c.Auth.UnmarshalMLSFor(r, ct)
	pad := r.Rest()
	for _, b := range pad {
		if b != 0 {
			r.Fail(errNonzeroPadding)
			return
		}
	}
	c.Padding = len(pad)
}

// UnmarshalPrivateMessageContent decodes a decrypted PrivateMessage
// ciphertext whose PrivateMessage.content_type is ct.
func UnmarshalPrivateMessageContent(data []byte, ct ContentType) (*PrivateMessageContent, error) {
	c := new(PrivateMessageContent)
	r := wire.NewReader(data)
	c.UnmarshalMLSFor(r, ct)
	if err := r.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// MLSMessage is the envelope of everything MLS sends (RFC 9420 section 6):
// the field matching WireFormat holds the body.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

func (m *MLSMessage) MarshalMLS(w *wire.Writer) {
	if m.Version != ProtocolMLS10 {
		w.Fail(fmt.Errorf("mls: cannot encode MLSMessage.version %d", m.Version))
	}
	w.U16(uint16(m.Version))
	w.U16(uint16(m.WireFormat))
	switch m.WireFormat {
	case WireFormatPublicMessage:
		marshalOrZero(w, m.PublicMessage)
	case WireFormatPrivateMessage:
		marshalOrZero(w, m.PrivateMessage)
	case WireFormatWelcome:
		marshalOrZero(w, m.Welcome)
	case WireFormatGroupInfo:
		marshalOrZero(w, m.GroupInfo)
	case WireFormatKeyPackage:
		marshalOrZero(w, m.KeyPackage)
	default:
		w.Fail(fmt.Errorf("mls: cannot encode MLSMessage.wire_format %d", m.WireFormat))
	}
}

// UnmarshalMLS rejects any version but mls10 before reading further, since
// the layout of the rest is defined by the version.
func (m *MLSMessage) UnmarshalMLS(r *wire.Reader) {
	*m = MLSMessage{Version: ProtocolVersion(r.U16())}
	if r.Err() == nil && m.Version != ProtocolMLS10 {
		r.Failf("mls: unsupported MLSMessage.version %d", m.Version)
		return
	}
	m.WireFormat = WireFormat(r.U16())
	switch m.WireFormat {
	case WireFormatPublicMessage:
		m.PublicMessage = new(PublicMessage)
		m.PublicMessage.UnmarshalMLS(r)
	case WireFormatPrivateMessage:
		m.PrivateMessage = new(PrivateMessage)
		m.PrivateMessage.UnmarshalMLS(r)
	case WireFormatWelcome:
		m.Welcome = new(Welcome)
		m.Welcome.UnmarshalMLS(r)
	case WireFormatGroupInfo:
		m.GroupInfo = new(GroupInfo)
		m.GroupInfo.UnmarshalMLS(r)
	case WireFormatKeyPackage:
		m.KeyPackage = new(KeyPackage)
		m.KeyPackage.UnmarshalMLS(r)
	default:
		r.Failf("mls: unknown MLSMessage.wire_format %d", m.WireFormat)
	}
}
