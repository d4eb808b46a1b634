package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/mls/wire"
)

// A responder session is configured with one pinned peer key, but a
// listener serves many peers. So the accepter reads the first control
// messages itself: it answers a HelloKeyRequest statelessly, opens the
// SealedHello that follows with the device's hello keys (sealed.go), and
// only then hands the connection and the opened hello to the peer with
// the pinned key inside, whose session does the real checks (pin,
// signature, suite) without opening it again. Reading costs no
// cryptography; the one open is behind the handshake rate limits.

// maxHelloLen bounds how much an unidentified connection may make us
// buffer: a key request and a sealed ClientHello, whose envelope is at
// most maxClientHelloLen (the largest suite's is under 9 KiB), and room
// for a sender that splits them over many small records.
const maxHelloLen = 2 * maxClientHelloLen

// Plaintext handshake record framing (docs/protocol.md section 7).
const (
	plainHeaderLen   = 5
	contentHandshake = 22
	legacyRecordVer  = 0x0303
	maxPlainFragment = 1 << 14
)

var errNotHello = errors.New("tunnel: first message is not a hello")

// helloStream reads the plaintext handshake messages an unidentified
// connection sends before it is identified.
type helloStream struct {
	r io.Reader
	// raw is what was read and not consumed; total counts every byte.
	raw   []byte
	total int
}

// next reads plaintext handshake records until one complete control
// envelope is in, and returns its type and the envelope; the records that
// carry it are consumed, and must carry nothing else. A plaintext
// ClientHello or ResumptionRequest is returned as soon as its header
// says what it is, without its body: it is refused whole.
func (h *helloStream) next() (session.MsgType, []byte, error) {
	buf := make([]byte, 4096)
	var env []byte
	for {
		// Reparsing from the start each time is quadratic only in the
		// handful of reads a hello takes.
		frags, used, err := plainFragments(h.raw)
		if err != nil {
			return 0, nil, err
		}
		env = env[:0]
		for _, f := range frags {
			env = append(env, f...)
		}
		t, n, err := envelopeLen(env)
		if err != nil {
			return 0, nil, err
		}
		if t == session.MsgClientHello || t == session.MsgResumptionRequest {
			return t, nil, nil
		}
		if n > 0 && n <= len(env) {
			if n != len(env) {
				return 0, nil, fmt.Errorf("tunnel: %d bytes after the %s in its records", len(env)-n, t)
			}
			h.raw = h.raw[used:]
			return t, env, nil
		}
		if h.total >= maxHelloLen {
			return 0, nil, fmt.Errorf("tunnel: no hello in the first %d bytes", h.total)
		}
		k, err := h.r.Read(buf[:min(len(buf), maxHelloLen-h.total)])
		h.raw = append(h.raw, buf[:k]...)
		h.total += k
		if err != nil && k == 0 {
			return 0, nil, err
		}
	}
}

// plainFragments splits the complete plaintext handshake records at the
// front of b and returns their contents and how many bytes they took.
func plainFragments(b []byte) (frags [][]byte, used int, err error) {
	consumed := 0
	for len(b)-consumed >= plainHeaderLen {
		h := b[consumed:]
		if h[0] != contentHandshake || binary.BigEndian.Uint16(h[1:]) != legacyRecordVer {
			return nil, 0, fmt.Errorf("tunnel: not a plaintext handshake record (type %d)", h[0])
		}
		l := int(binary.BigEndian.Uint16(h[3:]))
		if l == 0 || l > maxPlainFragment {
			return nil, 0, fmt.Errorf("tunnel: plaintext record of %d bytes", l)
		}
		if len(h) < plainHeaderLen+l {
			break
		}
		frags = append(frags, h[plainHeaderLen:plainHeaderLen+l])
		consumed += plainHeaderLen + l
	}
	return frags, consumed, nil
}

// envelopeLen is the type and length of the control envelope at the front
// of b (uint16 version, uint8 type, varint-prefixed body); the length is 0
// while its header is not complete. Only the messages that may open a
// connection are taken.
func envelopeLen(b []byte) (session.MsgType, int, error) {
	if len(b) < 3 {
		return 0, 0, nil
	}
	if v := binary.BigEndian.Uint16(b); v != session.ProtocolVersion {
		return 0, 0, fmt.Errorf("tunnel: control protocol version %d", v)
	}
	t := session.MsgType(b[2])
	switch t {
	case session.MsgClientHello, session.MsgResumptionRequest:
		return t, 0, nil
	case session.MsgHelloKeyRequest, session.MsgSealedHello:
	default:
		return 0, 0, errNotHello
	}
	body, n, err := wire.ParseVarint(b[3:])
	if errors.Is(err, wire.ErrTruncated) {
		return t, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	if body > maxClientHelloLen {
		return 0, 0, fmt.Errorf("tunnel: %s of %d bytes", t, body)
	}
	return t, 3 + n + int(body), nil
}
