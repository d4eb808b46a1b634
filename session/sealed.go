package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/mls/wire"
)

// The messages of identity hiding (docs/protocol.md 7.14), all sent in
// plaintext framing:
//
//	struct { opaque padding<V>; } HelloKeyRequest;   // anti-amplification
//	struct { HelloKey key; } HelloKeyAnswer;
//	struct {
//	    opaque key_id[8];
//	    opaque enc<V>;          // HPKE encapsulated key
//	    opaque ciphertext<V>;   // HPKE ciphertext of SealedHelloContent
//	} SealedHello;
//	struct { opaque ciphertext<V>; } SealedAnswer;   // AES-256-GCM
//
//	struct {
//	    uint64 timestamp;       // initiator's clock, ns since the Unix epoch
//	    opaque answer_key[32];  // seals the responder's answer
//	    opaque hello<V>;        // ClientHello or ResumptionRequest envelope
//	} SealedHelloContent;
//
// The HPKE info is "CURRENT sealed hello" || version || key_id and the AAD
// version || msg_type || key_id, so a sealed hello opens only as what it
// was sealed as: this protocol version, this message, this key.

// HelloKeyRequest asks a responder for its current hello key. It carries
// nothing but padding, which makes it at least a third of the answer's
// size so that a spoofed request cannot amplify.
type HelloKeyRequest struct{ Padding []byte }

// HelloKeyAnswer is the responder's signed hello key.
type HelloKeyAnswer struct{ Key HelloKey }

// SealedHello is a ClientHello or ResumptionRequest sealed to a hello key.
type SealedHello struct {
	KeyID      [HelloKeyIDLen]byte
	Enc        []byte
	Ciphertext []byte
}

// SealedAnswer is the responder's ServerHello or ResumptionResponse,
// encrypted under the answer key of the sealed hello it answers: the
// ResumptionResponse's commit names the group, which must not show.
type SealedAnswer struct{ Ciphertext []byte }

func (*HelloKeyRequest) Type() MsgType { return MsgHelloKeyRequest }
func (*HelloKeyAnswer) Type() MsgType  { return MsgHelloKeyAnswer }
func (*SealedHello) Type() MsgType     { return MsgSealedHello }
func (*SealedAnswer) Type() MsgType    { return MsgSealedAnswer }

func (m *HelloKeyRequest) marshalBody(w *wire.Writer)   { w.Opaque(m.Padding) }
func (m *HelloKeyRequest) unmarshalBody(r *wire.Reader) { m.Padding = r.Opaque() }
func (m *HelloKeyAnswer) marshalBody(w *wire.Writer)    { m.Key.marshal(w) }
func (m *HelloKeyAnswer) unmarshalBody(r *wire.Reader)  { m.Key.unmarshal(r) }
func (m *SealedAnswer) marshalBody(w *wire.Writer)      { w.Opaque(m.Ciphertext) }
func (m *SealedAnswer) unmarshalBody(r *wire.Reader)    { m.Ciphertext = r.Opaque() }

func (m *SealedHello) marshalBody(w *wire.Writer) {
	w.Raw(m.KeyID[:])
	w.Opaque(m.Enc)
	w.Opaque(m.Ciphertext)
}

func (m *SealedHello) unmarshalBody(r *wire.Reader) {
	copy(m.KeyID[:], r.Raw(HelloKeyIDLen))
	m.Enc = r.Opaque()
	m.Ciphertext = r.Opaque()
}

const (
	answerKeyLen    = 32
	sealInfoLabel   = "CURRENT sealed hello"
	sealAnswerLabel = "CURRENT sealed answer"
)

func sealInfo(id [HelloKeyIDLen]byte) []byte {
	b := append([]byte(sealInfoLabel), byte(ProtocolVersion>>8), byte(ProtocolVersion))
	return append(b, id[:]...)
}

func sealAAD(id [HelloKeyIDLen]byte) []byte {
	b := []byte{byte(ProtocolVersion >> 8), byte(ProtocolVersion), byte(MsgSealedHello)}
	return append(b, id[:]...)
}

// sealHello seals the hello envelope to k with timestamp ts and returns
// the SealedHello and the answer key the responder will use.
func sealHello(suite *mls.CipherSuite, k *HelloKey, ts time.Time, hello []byte, rnd io.Reader) (*SealedHello, []byte, error) {
	answerKey := make([]byte, answerKeyLen)
	if _, err := io.ReadFull(rnd, answerKey); err != nil {
		return nil, nil, err
	}
	w := wire.NewWriter(make([]byte, 0, 8+answerKeyLen+len(hello)+8))
	w.U64(uint64(ts.UnixNano()))
	w.Raw(answerKey)
	w.Opaque(hello)
	pt, err := w.Bytes()
	if err != nil {
		clear(answerKey)
		return nil, nil, err
	}
	enc, ct, err := suite.SealBase(k.PublicKey, sealInfo(k.ID), sealAAD(k.ID), pt)
	clear(pt)
	if err != nil {
		clear(answerKey)
		return nil, nil, err
	}
	return &SealedHello{KeyID: k.ID, Enc: enc, Ciphertext: ct}, answerKey, nil
}

// parseSealedContent decodes an opened SealedHelloContent.
func parseSealedContent(pt []byte) (*openedHello, error) {
	r := wire.NewReader(pt)
	ts := r.U64()
	key := r.Raw(answerKeyLen)
	hello := r.Opaque()
	if err := r.Finish(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSealedHello, err)
	}
	if ts > 1<<63-1 {
		return nil, fmt.Errorf("%w: timestamp out of range", ErrSealedHello)
	}
	return &openedHello{
		time:      time.Unix(0, int64(ts)).UTC(),
		answerKey: append([]byte(nil), key...),
		hello:     append([]byte(nil), hello...),
	}, nil
}

// answerAEAD is AES-256-GCM under an answer key. Each answer key seals
// exactly one message (a retransmission resends the same bytes), so a
// fixed nonce is never reused with different plaintext.
func answerAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != answerKeyLen {
		return nil, fmt.Errorf("%w: answer key of %d bytes", ErrMalformed, len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var answerNonce [12]byte

func answerAAD() []byte {
	return binary.BigEndian.AppendUint16([]byte(sealAnswerLabel), ProtocolVersion)
}

func sealAnswer(key, env []byte) (*SealedAnswer, error) {
	a, err := answerAEAD(key)
	if err != nil {
		return nil, err
	}
	return &SealedAnswer{Ciphertext: a.Seal(nil, answerNonce[:], env, answerAAD())}, nil
}

func openAnswer(key []byte, m *SealedAnswer) ([]byte, error) {
	a, err := answerAEAD(key)
	if err != nil {
		return nil, err
	}
	return a.Open(nil, answerNonce[:], m.Ciphertext, answerAAD())
}

// requestPadding is how much padding a HelloKeyRequest of suite carries:
// enough that the answer is at most three times the request's envelope,
// the anti-amplification bound QUIC uses (RFC 9000 section 8).
func requestPadding(suite *mls.CipherSuite) int {
	return max(0, (helloAnswerBound(suite)+2)/3-8)
}

// helloAnswerBound bounds the HelloKeyAnswer envelope of suite: the
// envelope and HelloKey fields, the KEM public key and the signature.
func helloAnswerBound(suite *mls.CipherSuite) int {
	const fixed = 3 + 4 + 2 + 2 + HelloKeyIDLen + 16 + 2*4
	return fixed + kemPublicKeyLen(suite) + signatureLen(suite)
}

// kemPublicKeyLen is Npk of the suite's KEM (RFC 9180 section 7.1,
// FIPS 203, draft-connolly-cfrg-xwing-kem).
func kemPublicKeyLen(s *mls.CipherSuite) int {
	switch s.KEMID {
	case 0x0010:
		return 65
	case 0x0011:
		return 97
	case 0x0012:
		return 133
	case 0x0020:
		return 32
	case 0x0021:
		return 56
	case 0x0041:
		return 1184
	case 0x647a:
		return 1216
	}
	return 1216
}

// signatureLen bounds a signature of the suite's scheme (ECDSA in DER).
func signatureLen(s *mls.CipherSuite) int {
	switch s.Signature {
	case mls.SigEd25519:
		return 64
	case mls.SigEd448:
		return 114
	case mls.SigECDSAP256SHA256:
		return 72
	case mls.SigECDSAP384SHA384:
		return 104
	case mls.SigECDSAP521SHA512:
		return 139
	case mls.SigMLDSA65:
		return 3309
	}
	return 3309
}

// randomReader is the source of answer keys: key material comes from
// crypto/rand whatever Config.Rand says, as the MLS engine's does.
var randomReader io.Reader = rand.Reader
