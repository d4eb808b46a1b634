package session

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// HelloKeyring holds a responder's hello keys, the current one and the one
// it replaced, and opens the sealed hellos sent to them. The caller
// generates, rotates (Install) and persists the keys; the keyring takes
// them as input, like every other secret of this package. It is shared by
// all the sessions of a listener and safe for concurrent use.
//
// It also keeps, per key, a bounded set of the sealed hellos it opened,
// and refuses one it has seen before opening it: a replayed hello costs a
// hash and a lookup while remembered, one KEM decapsulation once evicted,
// after which the per-peer timestamp (Config.HelloFloor) refuses it before
// any signature or Welcome work. Retiring a key drops its set, and with
// the key every hello sealed to it becomes unopenable.
type HelloKeyring struct {
	mu    sync.Mutex
	suite *mls.CipherSuite
	keys  [2]*ringKey // current, previous
	max   int
}

// DefaultReplayCache is how many sealed hellos a HelloKeyring remembers
// per key: at 32 bytes each, 64 Ki entries are 2 MiB, a day of handshakes
// at almost one per second per key.
const DefaultReplayCache = 1 << 16

type ringKey struct {
	pair *HelloKeyPair
	// recipient is the private key parsed once: parsing an X-Wing or
	// ML-KEM key expands it from its seed, as costly as a decapsulation.
	recipient *mls.HPKERecipient
	// answer is the encoded HelloKeyAnswer envelope, made once.
	answer []byte
	seen   map[[32]byte]struct{}
	ring   [][32]byte
	next   int
}

// Why a sealed hello was not opened.
var (
	// ErrUnknownHelloKey: the key it names is not installed or not valid
	// now; the sender gets the current HelloKeyAnswer.
	ErrUnknownHelloKey = errors.New("session: sealed hello for an unknown or expired hello key")
	// ErrReplayedHello: the keyring opened these exact bytes before.
	ErrReplayedHello = errors.New("session: sealed hello seen before")
	// ErrSealedHello: it does not open, or what it holds is malformed.
	ErrSealedHello = errors.New("session: sealed hello does not open")
)

// NewHelloKeyring returns an empty keyring of suite; replayCache bounds
// the set of opened hellos per key (0 means DefaultReplayCache).
func NewHelloKeyring(suite mls.CipherSuiteID, replayCache int) (*HelloKeyring, error) {
	s, err := mls.Suite(suite)
	if err != nil {
		return nil, err
	}
	if replayCache <= 0 {
		replayCache = DefaultReplayCache
	}
	return &HelloKeyring{suite: s, max: replayCache}, nil
}

// Install makes k the current key; the current one becomes the previous
// one, still accepted, and the previous one is wiped. The keyring owns k
// from now on.
func (r *HelloKeyring) Install(k *HelloKeyPair) error {
	if k == nil || k.Public.Suite != r.suite.ID || k.Public.ID != helloKeyID(k.Public.PublicKey) {
		return fmt.Errorf("%w: not a key of this keyring's suite", ErrHelloKey)
	}
	answer, err := EncodeControl(&HelloKeyAnswer{Key: k.Public})
	if err != nil {
		return err
	}
	recipient, err := r.suite.NewHPKERecipient(k.Private)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHelloKey, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.keys[1]; old != nil {
		old.pair.Wipe()
	}
	r.keys[1] = r.keys[0]
	r.keys[0] = &ringKey{pair: k, recipient: recipient, answer: answer, seen: make(map[[32]byte]struct{})}
	return nil
}

// Current is the public half of the current key, nil if none is installed.
func (r *HelloKeyring) Current() *HelloKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys[0] == nil {
		return nil
	}
	k := r.keys[0].pair.Public
	return &k
}

// answer is the HelloKeyAnswer envelope of the current key.
func (r *HelloKeyring) answer() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys[0] == nil {
		return nil
	}
	return r.keys[0].answer
}

// openedHello is the content of a sealed hello.
type openedHello struct {
	time      time.Time
	answerKey []byte
	hello     []byte // the inner ClientHello or ResumptionRequest envelope
	key       *HelloKey
}

// open opens m, whose envelope hashes to h, at now. The only asymmetric
// operation is the HPKE open, and it is not reached for an unknown key, a
// key outside its validity, or a hello seen before.
func (r *HelloKeyring) open(now time.Time, m *SealedHello, h [32]byte) (*openedHello, error) {
	r.mu.Lock()
	k := r.find(m.KeyID, now)
	if k == nil {
		r.mu.Unlock()
		return nil, ErrUnknownHelloKey
	}
	if _, dup := k.seen[h]; dup {
		r.mu.Unlock()
		return nil, ErrReplayedHello
	}
	recipient := k.recipient
	pub := k.pair.Public
	r.mu.Unlock()

	// Opened outside the lock: one decapsulation must not stall every
	// other session of the listener. A rotation meanwhile drops the
	// key from the ring but leaves the parsed key to this open.
	pt, err := recipient.OpenBase(m.Enc, sealInfo(m.KeyID), sealAAD(m.KeyID), m.Ciphertext)
	if err != nil {
		return nil, ErrSealedHello
	}
	o, err := parseSealedContent(pt)
	clear(pt)
	if err != nil {
		return nil, err
	}
	if !pub.validAt(o.time) {
		o.wipe()
		return nil, fmt.Errorf("%w: timestamp outside the key's validity", ErrSealedHello)
	}
	o.key = &pub
	r.mu.Lock()
	defer r.mu.Unlock()
	if k := r.find(m.KeyID, now); k != nil {
		if _, dup := k.seen[h]; dup {
			// Two copies raced through the open: only one goes on.
			o.wipe()
			return nil, ErrReplayedHello
		}
		k.remember(h, r.max)
	}
	return o, nil
}

// find returns the installed key with id, if valid at now.
func (r *HelloKeyring) find(id [HelloKeyIDLen]byte, now time.Time) *ringKey {
	for _, k := range r.keys {
		if k != nil && k.pair.Public.ID == id && k.pair.Public.validAt(now) {
			return k
		}
	}
	return nil
}

func (k *ringKey) remember(h [32]byte, max int) {
	if len(k.ring) < max {
		k.ring = append(k.ring, h)
	} else {
		delete(k.seen, k.ring[k.next])
		k.ring[k.next] = h
		k.next = (k.next + 1) % max
	}
	k.seen[h] = struct{}{}
}

func (o *openedHello) wipe() {
	clear(o.answerKey)
	clear(o.hello)
}

// OpenedHello is a sealed hello opened by HelloKeyring.OpenHello, for a
// listener that must learn whose it is before it picks the session to
// hand it to (Session.HandleOpenedHello). It can be handled once.
type OpenedHello struct {
	// SignatureKey is the signature key of a ClientHello's KeyPackage,
	// unverified: the pinned key of the peer it claims to be.
	SignatureKey []byte
	// Resumption: it is a ResumptionRequest, for the group GroupID at
	// Epoch (unverified).
	Resumption bool
	GroupID    []byte
	Epoch      uint64

	inner   Message
	env     []byte
	content *openedHello
}

// Wipe zeroes the answer key and the opened content of a hello that will
// not be handled (a listener that drops it); o is unusable after.
func (o *OpenedHello) Wipe() {
	if o.content != nil {
		o.content.wipe()
	}
}

// OpenHello decodes and opens the sealed hello envelope env (one HPKE
// open; none for a replay or an unknown key).
func (r *HelloKeyring) OpenHello(now time.Time, env []byte) (*OpenedHello, error) {
	m, err := DecodeControl(env)
	if err != nil {
		return nil, err
	}
	sh, ok := m.(*SealedHello)
	if !ok {
		return nil, fmt.Errorf("%w: a %s", ErrSealedHello, m.Type())
	}
	return r.openHello(now, sh, env, sha256.Sum256(env))
}

func (r *HelloKeyring) openHello(now time.Time, m *SealedHello, env []byte, h [32]byte) (*OpenedHello, error) {
	o, err := r.open(now, m, h)
	if err != nil {
		return nil, err
	}
	inner, err := DecodeControl(o.hello)
	if err != nil {
		o.wipe()
		return nil, fmt.Errorf("%w: %w", ErrSealedHello, err)
	}
	oh := &OpenedHello{inner: inner, env: env, content: o}
	switch m := inner.(type) {
	case *ClientHello:
		kp := m.KeyPackage.KeyPackage
		if kp == nil {
			o.wipe()
			return nil, fmt.Errorf("%w: ClientHello without a KeyPackage", ErrSealedHello)
		}
		oh.SignatureKey = kp.LeafNode.SignatureKey
	case *ResumptionRequest:
		oh.Resumption = true
		if c := m.Commit; c != nil && c.PublicMessage != nil {
			oh.GroupID, oh.Epoch = c.PublicMessage.Content.GroupID, c.PublicMessage.Content.Epoch
		}
	default:
		o.wipe()
		return nil, fmt.Errorf("%w: it holds a %s", ErrSealedHello, inner.Type())
	}
	return oh, nil
}

// AnswerRequest is the stateless answer of a listener that has no session
// for the sender yet: given a reassembled HelloKeyRequest envelope (or a
// SealedHello that OpenHello refused with ErrUnknownHelloKey), the
// HelloKeyAnswer as datagrams to the request's sender index (at most
// maxDatagramSize bytes each, 0 meaning DefaultMaxDatagramSize), or, with
// sender 0 and maxDatagramSize -1, as plaintext stream records. In
// datagram mode a request too short for the answer (the 3x bound) gets
// nothing. No asymmetric operation and no state.
func (r *HelloKeyring) AnswerRequest(env []byte, sender uint32, maxDatagramSize int) ([][]byte, error) {
	m, err := DecodeControl(env)
	if err != nil {
		return nil, err
	}
	if t := m.Type(); t != MsgHelloKeyRequest && t != MsgSealedHello {
		return nil, fmt.Errorf("%w: %s is not a HelloKeyRequest", ErrUnexpectedMessage, t)
	}
	answer := r.answer()
	if answer == nil {
		return nil, ErrNoHelloKey
	}
	if maxDatagramSize < 0 {
		return appendPlainRecords(nil, answer), nil
	}
	if maxDatagramSize == 0 {
		maxDatagramSize = DefaultMaxDatagramSize
	}
	if maxDatagramSize < minDatagramSize {
		return nil, fmt.Errorf("%w: MaxDatagramSize %d", ErrBadConfig, maxDatagramSize)
	}
	if len(answer) > 3*len(env) {
		return nil, drop("%d-byte request for a %d-byte answer", len(env), len(answer))
	}
	return appendPlainDatagrams(nil, answer, 0, sender, 0, nil, maxDatagramSize), nil
}
