package tunnel

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/mls/wire"
)

// A responder session is configured with one pinned peer key, but a
// listener serves many peers. So the accepter reads the first control
// message itself, takes the signature key out of the ClientHello's
// KeyPackage and only then creates the session of the peer with that key,
// which re-reads the same bytes and does the real checks (pin, signature,
// suite). Parsing here costs no cryptography, so strangers cost us little.

// maxHelloLen bounds how much an unidentified connection may make us
// buffer: a ClientHello's envelope is at most maxClientHelloLen (the
// largest suite's is under 8 KiB), and the rest leaves room for a sender
// that splits it over many small records.
const maxHelloLen = 2 * maxClientHelloLen

// Plaintext handshake record framing (docs/protocol.md section 7).
const (
	plainHeaderLen   = 5
	contentHandshake = 22
	legacyRecordVer  = 0x0303
	maxPlainFragment = 1 << 14
)

var errNotHello = errors.New("tunnel: first message is not a ClientHello")

// clientHello is what the accepter learned from a connection's first bytes.
type clientHello struct {
	signatureKey []byte
	suite        mls.CipherSuiteID
	// raw is every byte read so far, to be replayed into the session.
	raw []byte
	// hash identifies the hello (its envelope), for the replay check.
	hash [32]byte
}

// readClientHello reads plaintext handshake records from r until one
// complete control envelope is in, and decodes it.
func readClientHello(r io.Reader) (*clientHello, error) {
	var raw, env []byte
	buf := make([]byte, 4096)
	for {
		// Reparsing from the start each time is quadratic only in the
		// handful of reads a ClientHello takes.
		frags, err := plainFragments(raw)
		if err != nil {
			return nil, err
		}
		env = env[:0]
		for _, f := range frags {
			env = append(env, f...)
		}
		if n, err := envelopeLen(env); err != nil {
			return nil, err
		} else if n > 0 && n <= len(env) {
			m, err := session.DecodeControl(env[:n])
			if err != nil {
				return nil, err
			}
			ch, ok := m.(*session.ClientHello)
			if !ok || ch.KeyPackage == nil || ch.KeyPackage.KeyPackage == nil {
				return nil, errNotHello
			}
			kp := ch.KeyPackage.KeyPackage
			return &clientHello{signatureKey: kp.LeafNode.SignatureKey, suite: kp.CipherSuite, raw: raw, hash: sha256.Sum256(env[:n])}, nil
		}
		if len(raw) >= maxHelloLen {
			return nil, fmt.Errorf("tunnel: no ClientHello in the first %d bytes", len(raw))
		}
		k, err := r.Read(buf[:min(len(buf), maxHelloLen-len(raw))])
		raw = append(raw, buf[:k]...)
		if err != nil && k == 0 {
			return nil, err
		}
	}
}

// plainFragments splits the complete plaintext handshake records at the
// front of b and returns their contents.
func plainFragments(b []byte) (frags [][]byte, err error) {
	consumed := 0
	for len(b)-consumed >= plainHeaderLen {
		h := b[consumed:]
		if h[0] != contentHandshake || binary.BigEndian.Uint16(h[1:]) != legacyRecordVer {
			return nil, fmt.Errorf("tunnel: not a plaintext handshake record (type %d)", h[0])
		}
		l := int(binary.BigEndian.Uint16(h[3:]))
		if l == 0 || l > maxPlainFragment {
			return nil, fmt.Errorf("tunnel: plaintext record of %d bytes", l)
		}
		if len(h) < plainHeaderLen+l {
			break
		}
		frags = append(frags, h[plainHeaderLen:plainHeaderLen+l])
		consumed += plainHeaderLen + l
	}
	return frags, nil
}

// envelopeLen is the length of the control envelope at the front of b
// (uint16 version, uint8 type, varint-prefixed body), or 0 if its header is
// not complete yet.
func envelopeLen(b []byte) (int, error) {
	if len(b) < 3 {
		return 0, nil
	}
	if v := binary.BigEndian.Uint16(b); v != session.ProtocolVersion {
		return 0, fmt.Errorf("tunnel: control protocol version %d", v)
	}
	if session.MsgType(b[2]) != session.MsgClientHello {
		return 0, errNotHello
	}
	body, n, err := wire.ParseVarint(b[3:])
	if errors.Is(err, wire.ErrTruncated) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if body > maxClientHelloLen {
		return 0, fmt.Errorf("tunnel: ClientHello of %d bytes", body)
	}
	return 3 + n + int(body), nil
}
