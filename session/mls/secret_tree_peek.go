package mls

import (
	"bytes"
	"errors"
	"fmt"
)

// Peek returns the key and nonce of a received message's generation without
// consuming them or changing the tree in any way. A receiver peeks, decrypts
// and verifies, and only then consumes the key with Get: otherwise a message
// tampered with on the path (which fails the AEAD) would burn the key of the
// genuine message behind it, and a message rejected for a local reason could
// never be accepted on retry.
func (t *SecretTree) Peek(leaf uint32, typ RatchetType, generation uint32) (key, nonce []byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.wiped {
		return nil, nil, errors.New("mls: secret tree has been wiped")
	}
	if typ != HandshakeRatchet && typ != ApplicationRatchet {
		return nil, nil, fmt.Errorf("mls: unknown ratchet type %d", uint8(typ))
	}
	if lr, ok := t.ratchets[LeafIndex(leaf)]; ok {
		r := &lr.handshake
		if typ == ApplicationRatchet {
			r = &lr.application
		}
		return r.peek(t.suite, generation, t.cfg)
	}
	secret, err := t.peekRatchetSecret(LeafIndex(leaf), typ)
	if err != nil {
		return nil, nil, err
	}
	r := &hashRatchet{secret: secret}
	defer r.wipe()
	return r.peek(t.suite, generation, t.cfg)
}

// peekRatchetSecret derives the first ratchet secret of a leaf whose
// ratchets do not exist yet, working on copies of the stored tree secrets.
func (t *SecretTree) peekRatchetSecret(leaf LeafIndex, typ RatchetType) ([]byte, error) {
	target, ok := leafNode(leaf, t.leafCount)
	if !ok {
		return nil, fmt.Errorf("mls: leaf index %d outside a secret tree of %d leaves", leaf, t.leafCount)
	}
	x := target
	for t.nodes[x] == nil {
		if x, ok = x.parent(t.leafCount); !ok {
			return nil, fmt.Errorf("mls: secret tree has no secret left for leaf %d", leaf)
		}
	}
	secret := bytes.Clone(t.nodes[x])
	for x != target {
		left, right, err := t.expandNode(secret)
		zero(secret)
		if err != nil {
			return nil, err
		}
		if target < x {
			x, _ = x.left(t.leafCount)
			secret = left
			zero(right)
		} else {
			x, _ = x.right(t.leafCount)
			secret = right
			zero(left)
		}
	}
	defer zero(secret)
	label := "handshake"
	if typ == ApplicationRatchet {
		label = "application"
	}
	return t.suite.ExpandWithLabel(secret, label, nil, t.suite.Nh())
}

// peek is take without side effects: it steps a copy of the secret.
func (r *hashRatchet) peek(s *CipherSuite, g uint32, cfg SecretTreeConfig) (key, nonce []byte, err error) {
	if uint64(g) < r.next {
		mk, ok := r.kept[g]
		if !ok {
			return nil, nil, ErrGenerationConsumed
		}
		return bytes.Clone(mk.key), bytes.Clone(mk.nonce), nil
	}
	if r.secret == nil {
		return nil, nil, errors.New("mls: ratchet has used all 2^32 generations")
	}
	if uint64(g)-r.next > uint64(cfg.MaxForwardRatchet) {
		return nil, nil, fmt.Errorf("%w: next is %d, limit %d ahead", ErrGenerationTooFar, r.next, cfg.MaxForwardRatchet)
	}
	tmp := hashRatchet{secret: bytes.Clone(r.secret), next: r.next}
	defer tmp.wipe()
	for tmp.next < uint64(g) {
		if err := tmp.step(s, false); err != nil {
			return nil, nil, err
		}
	}
	return tmp.derive(s)
}
