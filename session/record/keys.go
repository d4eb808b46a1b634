package record

import (
	"crypto/cipher"
	"crypto/hkdf"
	"encoding/binary"

	_ "crypto/sha256" // SHA-256 for crypto.Hash
	_ "crypto/sha512" // SHA-384 and SHA-512 for crypto.Hash
)

// MLS exporter labels of draft-kohbrok-mls-tls: the application traffic
// secrets of the TLS record layer, exported from each MLS epoch with an empty
// context and the suite's hash length.
const (
	ClientTrafficLabel = "MLS-TLS c ap traffic"
	ServerTrafficLabel = "MLS-TLS s ap traffic"
)

// Exporter is the MLS-Exporter of one epoch (RFC 9420 section 8.5). The MLS
// engine's *EpochSecrets has exactly this method; the interface keeps this
// package independent of it.
type Exporter interface {
	Export(label string, context []byte, length int) ([]byte, error)
}

// Role says which traffic secret is ours: draft-kohbrok-mls-tls calls the
// session's initiator the client and the responder the server.
type Role uint8

const (
	Initiator Role = iota + 1
	Responder
)

// TrafficKeys are one direction's keys for one epoch: the AEAD keyed with the
// write key, and the write IV. A TrafficKeys is installed into exactly one
// sender or receiver, which owns it from then on and wipes it when the keys
// are replaced; a second installation is refused because two senders sharing
// a key would reuse nonces.
type TrafficKeys struct {
	suite Suite
	epoch uint64
	// aead holds its own copy of the key, expanded into round keys or a
	// ChaCha20 key array. Go gives no way to clear that copy: Wipe drops
	// the reference and the memory stays until the garbage collector reuses
	// it. The key bytes we control are zeroed as soon as aead exists.
	aead cipher.AEAD
	iv   [ivLen]byte
	// ivLo caches the IV's last eight bytes, the part the sequence number is
	// XORed into, so building a nonce is one store.
	ivLo    uint64
	limit   uint64
	claimed bool
}

// hkdfExpandLabel is TLS 1.3's HKDF-Expand-Label (RFC 9846 section 7.1) with
// the "tls13 " prefix: HKDF-Expand(secret, HkdfLabel, length).
func hkdfExpandLabel(s Suite, secret []byte, label string, context []byte, length int) ([]byte, error) {
	const prefix = "tls13 "
	if length < 0 || length > 0xffff || len(prefix)+len(label) > 255 || len(context) > 255 {
		return nil, ErrInvalidArgument
	}
	info := make([]byte, 0, 2+1+len(prefix)+len(label)+1+len(context))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(prefix)+len(label)))
	info = append(info, prefix...)
	info = append(info, label...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	return hkdf.Expand(s.Hash.New, secret, string(info), length)
}

// trafficKeyIV is RFC 9846 section 7.3's traffic key calculation.
func trafficKeyIV(s Suite, secret []byte) (key, iv []byte, err error) {
	key, err = hkdfExpandLabel(s, secret, "key", nil, s.AEAD.KeyLen())
	if err != nil {
		return nil, nil, err
	}
	iv, err = hkdfExpandLabel(s, secret, "iv", nil, ivLen)
	if err != nil {
		clear(key)
		return nil, nil, err
	}
	return key, iv, nil
}

// NewTrafficKeys derives the write key and IV of an application traffic
// secret for the given epoch. It takes ownership of secret and zeroes it
// before returning, success or not: draft-kohbrok-mls-tls requires the
// traffic secrets to be deleted once the traffic keys exist.
func NewTrafficKeys(s Suite, epoch uint64, secret []byte) (*TrafficKeys, error) {
	defer clear(secret)
	if !s.valid() || len(secret) != s.Hash.Size() {
		return nil, ErrInvalidArgument
	}
	key, iv, err := trafficKeyIV(s, secret)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	defer clear(iv)
	aead, err := s.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if aead.NonceSize() != ivLen || aead.Overhead() != TagLen {
		return nil, ErrInvalidArgument
	}
	k := &TrafficKeys{suite: s, epoch: epoch, aead: aead, limit: s.AEAD.RecordLimit()}
	copy(k.iv[:], iv)
	k.ivLo = binary.BigEndian.Uint64(k.iv[4:])
	return k, nil
}

// DeriveEpochKeys exports both application traffic secrets of an MLS epoch
// and turns them into our send keys and the peer's (our receive keys). epoch
// is the number of the epoch exp belongs to: installations must move forward
// in it, and datagram headers carry its low bits. The exported secrets are
// zeroed before it returns.
func DeriveEpochKeys(s Suite, exp Exporter, epoch uint64, role Role) (send, recv *TrafficKeys, err error) {
	if !s.valid() || exp == nil {
		return nil, nil, ErrInvalidArgument
	}
	sendLabel, recvLabel := ClientTrafficLabel, ServerTrafficLabel
	switch role {
	case Initiator:
	case Responder:
		sendLabel, recvLabel = recvLabel, sendLabel
	default:
		return nil, nil, ErrInvalidArgument
	}
	send, err = exportKeys(s, exp, epoch, sendLabel)
	if err != nil {
		return nil, nil, err
	}
	recv, err = exportKeys(s, exp, epoch, recvLabel)
	if err != nil {
		send.Wipe()
		return nil, nil, err
	}
	return send, recv, nil
}

func exportKeys(s Suite, exp Exporter, epoch uint64, label string) (*TrafficKeys, error) {
	secret, err := exp.Export(label, nil, s.Hash.Size())
	if err != nil {
		clear(secret)
		return nil, err
	}
	return NewTrafficKeys(s, epoch, secret)
}

// Epoch is the MLS epoch the keys belong to.
func (k *TrafficKeys) Epoch() uint64 { return k.epoch }

// Suite is the suite the keys were derived for.
func (k *TrafficKeys) Suite() Suite { return k.suite }

// Wipe zeroes the IV and drops the AEAD; the keys cannot be used afterwards.
// Senders and receivers call it on keys they replace or retire.
func (k *TrafficKeys) Wipe() {
	if k == nil {
		return
	}
	clear(k.iv[:])
	k.ivLo = 0
	k.aead = nil
	k.limit = 0
	k.claimed = true
}

// claim marks the keys as installed; false if they already were (or were
// wiped), so one key never feeds two sequence number spaces.
func (k *TrafficKeys) claim() bool {
	if k == nil || k.claimed || k.aead == nil {
		return false
	}
	k.claimed = true
	return true
}

// nonce writes the per-record nonce of RFC 9846 section 5.3 into dst: the
// sequence number, left-padded to iv_length, XORed with the IV. dst is a
// field of the long-lived sender or receiver, not a local array: a slice of
// a local passed to the cipher.AEAD interface method escapes to the heap and
// would cost an allocation per record.
func (k *TrafficKeys) nonce(dst *[ivLen]byte, seq uint64) {
	copy(dst[:4], k.iv[:4])
	binary.BigEndian.PutUint64(dst[4:], k.ivLo^seq)
}
