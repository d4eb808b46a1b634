package mls

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
)

// RatchetType selects one of the two hash ratchets each sender has.
type RatchetType uint8

// The zero RatchetType is invalid, so a forgotten field cannot silently pick
// the handshake ratchet.
const (
	HandshakeRatchet RatchetType = iota + 1
	ApplicationRatchet
)

func (r RatchetType) String() string {
	switch r {
	case HandshakeRatchet:
		return "handshake"
	case ApplicationRatchet:
		return "application"
	}
	return fmt.Sprintf("RatchetType(%d)", uint8(r))
}

// Defaults for the zero fields of SecretTreeConfig.
const (
	DefaultMaxForwardRatchet   = 1024
	DefaultOutOfOrderTolerance = 128
)

// SecretTreeConfig bounds what a receiver does for generations it has not
// seen in order. A zero field takes its default: a tunnel runs over a
// datagram transport, where strict in-order delivery is never guaranteed.
type SecretTreeConfig struct {
	// MaxForwardRatchet is how many generations past the next expected one
	// Get will skip. The generation comes from the sender data, which any
	// group member can forge, so this caps the hashing one message can cost.
	MaxForwardRatchet uint32
	// OutOfOrderTolerance is how many generations below the newest one handed
	// out a ratchet keeps unused keys for; older keys are deleted.
	OutOfOrderTolerance uint32
}

var (
	// ErrGenerationConsumed means the key of a generation was already handed
	// out (a replay) or was deleted as too old.
	ErrGenerationConsumed = errors.New("mls: message key already used or deleted")
	// ErrGenerationTooFar means a generation lies beyond MaxForwardRatchet.
	ErrGenerationTooFar = errors.New("mls: generation too far ahead of the ratchet")
)

// SecretTree hands out the per-sender message keys of one epoch (RFC 9420
// section 9), following the deletion schedule of section 9.2: tree secrets
// are expanded only when a leaf first needs them, a parent secret is zeroed
// as soon as both children exist, a leaf secret once its two ratchets exist,
// a ratchet secret when it is replaced by the next, and a key and nonce leave
// the tree when they are returned. It is safe for concurrent use; the lock
// is what guarantees no two callers ever receive the same key and nonce.
//
// Sending (Next) and receiving (Get) share one ratchet per leaf and type, as
// in other MLS implementations. A member sends only from its own leaf, and
// every generation's key leaves the tree at most once whichever call takes
// it: Next takes the ratchet's next generation and keeps no copy, so an echo
// or a forgery of our own message fails in Get instead of returning a key we
// encrypted with; and Get skipping ahead leaves Next only generations nobody
// has received. A forged sender data naming our leaf can thus push our own
// ratchet forward (at most MaxForwardRatchet per message) but never make us
// reuse a nonce.
type SecretTree struct {
	mu        sync.Mutex
	suite     *CipherSuite
	cfg       SecretTreeConfig
	leafCount uint32
	wiped     bool
	// nodes holds the tree secrets derived but not yet expanded: always a
	// frontier, so each leaf has at most one ancestor-or-self here and none
	// once its ratchets exist. Maps keep memory proportional to the senders
	// actually seen, not to a peer-announced tree size.
	nodes    map[NodeIndex][]byte
	ratchets map[LeafIndex]*leafRatchets
}

type leafRatchets struct {
	handshake, application hashRatchet
}

// NewSecretTree starts the secret tree of an epoch from its
// encryption_secret. leafCount is the width of the ratchet tree, a power of
// two. The tree keeps its own copy of encryptionSecret; the caller should
// zero its copy.
func NewSecretTree(s *CipherSuite, encryptionSecret []byte, leafCount uint32, cfg SecretTreeConfig) (*SecretTree, error) {
	if s == nil {
		return nil, errors.New("mls: secret tree needs a cipher suite")
	}
	if len(encryptionSecret) != s.Nh() {
		return nil, fmt.Errorf("mls: encryption secret is %d bytes, want %d", len(encryptionSecret), s.Nh())
	}
	root, ok := rootNode(leafCount)
	if !ok {
		return nil, fmt.Errorf("mls: secret tree leaf count %d is not a power of two up to 2^31", leafCount)
	}
	if cfg.MaxForwardRatchet == 0 {
		cfg.MaxForwardRatchet = DefaultMaxForwardRatchet
	}
	if cfg.OutOfOrderTolerance == 0 {
		cfg.OutOfOrderTolerance = DefaultOutOfOrderTolerance
	}
	return &SecretTree{
		suite:     s,
		cfg:       cfg,
		leafCount: leafCount,
		nodes:     map[NodeIndex][]byte{root: bytes.Clone(encryptionSecret)},
		ratchets:  map[LeafIndex]*leafRatchets{},
	}, nil
}

// Next returns the key and nonce of the next generation of leaf's ratchet,
// for encrypting one message, and forgets them. The caller owns the returned
// slices and should zero them after use.
func (t *SecretTree) Next(leaf uint32, typ RatchetType) (generation uint32, key, nonce []byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(LeafIndex(leaf), typ)
	if err != nil {
		return 0, nil, nil, err
	}
	if r.secret == nil {
		return 0, nil, nil, fmt.Errorf("mls: leaf %d %s ratchet has used all 2^32 generations", leaf, typ)
	}
	generation = uint32(r.next)
	key, nonce, err = r.take(t.suite, generation, t.cfg)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w (leaf %d %s ratchet)", err, leaf, typ)
	}
	return generation, key, nonce, nil
}

// Get returns the key and nonce of a received message's generation. Each
// generation is returned at most once, so a replay fails with
// ErrGenerationConsumed; keys skipped over on the way to a later generation
// are kept within OutOfOrderTolerance. The caller owns the returned slices
// and should zero them after use.
func (t *SecretTree) Get(leaf uint32, typ RatchetType, generation uint32) (key, nonce []byte, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, err := t.ratchet(LeafIndex(leaf), typ)
	if err != nil {
		return nil, nil, err
	}
	key, nonce, err = r.take(t.suite, generation, t.cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (leaf %d %s ratchet, generation %d)", err, leaf, typ, generation)
	}
	return key, nonce, nil
}

// Wipe zeroes every secret and key the tree still holds; afterwards every
// call fails.
func (t *SecretTree) Wipe() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.nodes {
		zero(s)
	}
	for _, lr := range t.ratchets {
		lr.handshake.wipe()
		lr.application.wipe()
	}
	t.nodes, t.ratchets, t.wiped = nil, nil, true
}

// ratchet returns leaf's ratchet of type typ, deriving the secrets on the
// path from the nearest stored ancestor down to the leaf on first use.
func (t *SecretTree) ratchet(leaf LeafIndex, typ RatchetType) (*hashRatchet, error) {
	if t.wiped {
		return nil, errors.New("mls: secret tree has been wiped")
	}
	if typ != HandshakeRatchet && typ != ApplicationRatchet {
		return nil, fmt.Errorf("mls: unknown ratchet type %d", uint8(typ))
	}
	lr, ok := t.ratchets[leaf]
	if !ok {
		var err error
		if lr, err = t.initLeaf(leaf); err != nil {
			return nil, err
		}
	}
	if typ == HandshakeRatchet {
		return &lr.handshake, nil
	}
	return &lr.application, nil
}

func (t *SecretTree) initLeaf(leaf LeafIndex) (*leafRatchets, error) {
	target, ok := leafNode(leaf, t.leafCount)
	if !ok {
		return nil, fmt.Errorf("mls: leaf index %d outside a secret tree of %d leaves", leaf, t.leafCount)
	}
	x := target
	for t.nodes[x] == nil {
		if x, ok = x.parent(t.leafCount); !ok {
			// Unreachable while the frontier invariant holds.
			return nil, fmt.Errorf("mls: secret tree has no secret left for leaf %d", leaf)
		}
	}
	for x != target {
		l, _ := x.left(t.leafCount)
		r, _ := x.right(t.leafCount)
		ls, rs, err := t.expandNode(t.nodes[x])
		if err != nil {
			return nil, err
		}
		zero(t.nodes[x])
		delete(t.nodes, x)
		t.nodes[l], t.nodes[r] = ls, rs
		if target < x {
			x = l
		} else {
			x = r
		}
	}
	s := t.suite
	leafSecret := t.nodes[target]
	e := s.newExpander(leafSecret)
	hs, err := e.deriveSecret("handshake")
	if err != nil {
		return nil, err
	}
	as, err := e.deriveSecret("application")
	if err != nil {
		zero(hs)
		return nil, err
	}
	zero(leafSecret)
	delete(t.nodes, target)
	lr := &leafRatchets{handshake: hashRatchet{secret: hs}, application: hashRatchet{secret: as}}
	t.ratchets[leaf] = lr
	return lr, nil
}

func (t *SecretTree) expandNode(secret []byte) (left, right []byte, err error) {
	e := t.suite.newExpander(secret)
	if left, err = e.expandWithLabel("tree", []byte("left"), t.suite.Nh()); err != nil {
		return nil, nil, err
	}
	if right, err = e.expandWithLabel("tree", []byte("right"), t.suite.Nh()); err != nil {
		zero(left)
		return nil, nil, err
	}
	return left, right, nil
}

// SenderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data from sender_data_secret and a sample of the
// content ciphertext (RFC 9420 section 6.3.2).
func SenderDataKeyNonce(s *CipherSuite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	if s == nil {
		return nil, nil, errors.New("mls: sender data key needs a cipher suite")
	}
	sample := ciphertext[:min(len(ciphertext), s.Nh())]
	e := s.newExpander(senderDataSecret)
	if key, err = e.expandWithLabel("key", sample, s.KeySize); err != nil {
		return nil, nil, err
	}
	if nonce, err = e.expandWithLabel("nonce", sample, s.NonceSize); err != nil {
		zero(key)
		return nil, nil, err
	}
	return key, nonce, nil
}

// hashRatchet is one sender ratchet of section 9.1.
type hashRatchet struct {
	// secret is ratchet_secret_[N]_[next]; nil once generation 2^32-1 is
	// gone, since the generation must never wrap back to keys already used.
	secret []byte
	// next is the lowest generation not yet derived, in [0, 2^32].
	next uint64
	// kept holds the unused keys of skipped generations, each at most
	// OutOfOrderTolerance below the newest generation handed out.
	kept map[uint32]messageKey
}

type messageKey struct{ key, nonce []byte }

// take hands out the key and nonce of generation g, stepping the ratchet up
// to it if it lies ahead.
func (r *hashRatchet) take(s *CipherSuite, g uint32, cfg SecretTreeConfig) (key, nonce []byte, err error) {
	if uint64(g) < r.next {
		mk, ok := r.kept[g]
		if !ok {
			return nil, nil, ErrGenerationConsumed
		}
		delete(r.kept, g)
		return mk.key, mk.nonce, nil
	}
	if r.secret == nil {
		return nil, nil, errors.New("mls: ratchet has used all 2^32 generations")
	}
	if uint64(g)-r.next > uint64(cfg.MaxForwardRatchet) {
		return nil, nil, fmt.Errorf("%w: next is %d, limit %d ahead", ErrGenerationTooFar, r.next, cfg.MaxForwardRatchet)
	}
	old := r.next
	tol := uint64(cfg.OutOfOrderTolerance)
	for r.next < uint64(g) {
		// Keys that the window would drop at once are never derived.
		keep := uint64(g)-r.next <= tol
		if err := r.step(s, keep); err != nil {
			return nil, nil, err
		}
	}
	if key, nonce, err = r.derive(s); err != nil {
		return nil, nil, err
	}
	if err := r.step(s, false); err != nil {
		zeroAll(key, nonce)
		return nil, nil, err
	}
	r.forget(old, tol)
	return key, nonce, nil
}

// derive returns the key and nonce of generation r.next.
func (r *hashRatchet) derive(s *CipherSuite) (key, nonce []byte, err error) {
	j := uint32(r.next)
	if key, err = s.DeriveTreeSecret(r.secret, "key", j, s.KeySize); err != nil {
		return nil, nil, err
	}
	if nonce, err = s.DeriveTreeSecret(r.secret, "nonce", j, s.NonceSize); err != nil {
		zero(key)
		return nil, nil, err
	}
	return key, nonce, nil
}

// step replaces the ratchet secret with the next one, first keeping the
// current generation's key and nonce if keep is set.
func (r *hashRatchet) step(s *CipherSuite, keep bool) error {
	j := uint32(r.next)
	if keep {
		key, nonce, err := r.derive(s)
		if err != nil {
			return err
		}
		if r.kept == nil {
			r.kept = map[uint32]messageKey{}
		}
		r.kept[j] = messageKey{key, nonce}
	}
	var next []byte
	if j != ^uint32(0) {
		var err error
		if next, err = s.DeriveTreeSecret(r.secret, "secret", j, s.Nh()); err != nil {
			return err
		}
	}
	zero(r.secret)
	r.secret = next
	r.next++
	return nil
}

// forget deletes the kept keys that fell out of the window while the ratchet
// advanced from old to r.next. Only generations below old can have been kept
// before, so the loop runs at most tol+1 times however far the ratchet moved.
func (r *hashRatchet) forget(old, tol uint64) {
	if len(r.kept) == 0 {
		return
	}
	lo := windowStart(old, tol)
	hi := min(windowStart(r.next, tol), old)
	for j := lo; j < hi; j++ {
		if mk, ok := r.kept[uint32(j)]; ok {
			zeroAll(mk.key, mk.nonce)
			delete(r.kept, uint32(j))
		}
	}
}

// windowStart is the lowest generation whose key may be kept when next is
// the ratchet's next generation: the newest one handed out is next-1.
func windowStart(next, tol uint64) uint64 {
	if next < 1+tol {
		return 0
	}
	return next - 1 - tol
}

func (r *hashRatchet) wipe() {
	zero(r.secret)
	r.secret = nil
	for g, mk := range r.kept {
		zeroAll(mk.key, mk.nonce)
		delete(r.kept, g)
	}
}
