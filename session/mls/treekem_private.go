package mls

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"

	"github.com/current-vpn/current/session/mls/wire"
)

// TreePrivateKey is one member's TreeKEM secret state: the HPKE private key
// of its leaf and of the parent nodes above it whose keys it knows (RFC 9420
// section 4.2). By the tree invariant it never holds a key for a node that is
// not an ancestor of Leaf.
type TreePrivateKey struct {
	Leaf           LeafIndex
	EncryptionPriv []byte
	PathPrivs      map[NodeIndex][]byte

	// parsed records, per node, what we learnt when we derived or checked
	// its private key: the digest of its public key, so that checking the
	// key against the tree need not parse it again (which recomputes the
	// public key), and for the DHKEMs the parsed key itself, for decrypting.
	// An entry counts only while the node's key is the very slice it was
	// made for (parsedFor), so replacing a key in the exported fields can
	// never pair it with another key's parse. Once the key becomes an
	// epoch's (compactParsed), only the leaf's parsed DHKEM key stays: it is
	// what the other member of a two-member group encrypts to, and it is
	// small. Parsed ML-KEM and X-Wing keys hold their expanded matrix, about
	// 8 KB each, which would double an established session's memory; they
	// are parsed again when used.
	parsed []parsedHPKEKey
}

type parsedHPKEKey struct {
	node    NodeIndex
	priv    []byte // the slice of EncryptionPriv or PathPrivs it parses
	sk      hpke.PrivateKey
	pubHash [sha256.Size]byte
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// setParsed records that priv, the key now held for node x, has public key
// pub and parses to sk (nil for X448, which records nothing).
func (k *TreePrivateKey) setParsed(x NodeIndex, priv []byte, sk hpke.PrivateKey, pub []byte) {
	if sk == nil || len(priv) == 0 {
		return
	}
	p := parsedHPKEKey{node: x, priv: priv, pubHash: sha256.Sum256(pub)}
	if smallParsedKey(sk) {
		p.sk = sk
	}
	k.setParsedEntry(p)
}

// setParsedKeep is setParsed keeping sk whatever its size, for a committer's
// new leaf key: it is what the other member of a two-member group encrypts
// its next path secret to, and in a resumption that comes one round trip
// later. compactParsed drops a large key when the key becomes an epoch's,
// unless the merge is MergeAndProcess's.
func (k *TreePrivateKey) setParsedKeep(x NodeIndex, priv []byte, sk hpke.PrivateKey, pub []byte) {
	if sk == nil || len(priv) == 0 {
		return
	}
	k.setParsedEntry(parsedHPKEKey{node: x, priv: priv, sk: sk, pubHash: sha256.Sum256(pub)})
}

// smallParsedKey reports whether sk is a DHKEM key, small enough to keep.
func smallParsedKey(sk hpke.PrivateKey) bool {
	switch sk.KEM().ID() {
	case kemDHKEMP256, kemDHKEMP384, kemDHKEMP521, kemDHKEMX25519:
		return true
	}
	return false
}

func (k *TreePrivateKey) setParsedEntry(p parsedHPKEKey) {
	k.dropParsed(p.node)
	k.parsed = append(k.parsed, p)
}

func (k *TreePrivateKey) dropParsed(x NodeIndex) {
	k.parsed = slices.DeleteFunc(k.parsed, func(p parsedHPKEKey) bool { return p.node == x })
}

// parsedFor returns what was recorded for priv, the key held for node x.
func (k *TreePrivateKey) parsedFor(x NodeIndex, priv []byte) (parsedHPKEKey, bool) {
	for _, p := range k.parsed {
		if p.node == x && sameSlice(p.priv, priv) {
			return p, true
		}
	}
	return parsedHPKEKey{}, false
}

// compactParsed keeps only the leaf's parsed DHKEM key, for a key that
// becomes an epoch's and lives as long; keepLeaf keeps the leaf's parsed
// key of any size, for one more step (MergeAndProcess).
func (k *TreePrivateKey) compactParsed(keepLeaf bool) {
	leaf := NodeIndex(2 * k.Leaf)
	k.parsed = slices.DeleteFunc(k.parsed, func(p parsedHPKEKey) bool {
		return p.node != leaf || p.sk == nil || !sameSlice(p.priv, k.EncryptionPriv) || !keepLeaf && !smallParsedKey(p.sk)
	})
	if len(k.parsed) == 0 {
		k.parsed = nil
	} else {
		k.parsed = slices.Clip(k.parsed)
	}
}

// Clone returns a deep copy, so the copy can be wiped independently.
func (k *TreePrivateKey) Clone() *TreePrivateKey {
	c := &TreePrivateKey{
		Leaf:           k.Leaf,
		EncryptionPriv: bytes.Clone(k.EncryptionPriv),
		PathPrivs:      make(map[NodeIndex][]byte, len(k.PathPrivs)),
	}
	for x, priv := range k.PathPrivs {
		c.PathPrivs[x] = bytes.Clone(priv)
	}
	for _, p := range k.parsed {
		if sameSlice(p.priv, k.privFor(p.node)) {
			p.priv = c.privFor(p.node)
			c.parsed = append(c.parsed, p)
		}
	}
	return c
}

// Wipe zeroes every private key and forgets them.
func (k *TreePrivateKey) Wipe() {
	zero(k.EncryptionPriv)
	k.EncryptionPriv = nil
	for x, priv := range k.PathPrivs {
		zero(priv)
		delete(k.PathPrivs, x)
	}
	k.parsed = nil
}

// privFor returns the private key k holds for node x, nil if none.
func (k *TreePrivateKey) privFor(x NodeIndex) []byte {
	if x == NodeIndex(2*k.Leaf) {
		return k.EncryptionPriv
	}
	if x.isLeaf() {
		return nil
	}
	return k.PathPrivs[x]
}

// ConsistentWith checks that every key k holds belongs where the tree says:
// its leaf is occupied and has the public key of EncryptionPriv, and every
// path key is for a non-blank ancestor of the leaf with the matching public
// key. Compared by public key, since some KEMs accept several encodings of
// one private key.
func (k *TreePrivateKey) ConsistentWith(s *CipherSuite, t RatchetTree) error {
	return k.placedIn(t, func(x NodeIndex, priv, pub []byte) error { return k.checkKeyPair(s, x, priv, pub) })
}

// placedIn checks that every key k holds is for a node where the tree has
// one: its leaf, occupied, and non-blank ancestors of it. check, if not
// nil, checks each key against the tree's public key for its node.
//
// A restored group (UnmarshalGroup) checks only the placement: comparing
// a private key with its public key means parsing it, which for X-Wing
// and ML-KEM is a key generation, and a resumption uses at most one of the
// saved keys (the hub's leaf key, to decrypt the peer's path secret; the
// resuming side replaces both of its keys before it decrypts anything).
// The key that is used is checked where it is parsed for the decryption
// (DecryptUpdatePath), so a state whose key does not match its tree still
// fails, with an error, at the first use.
func (k *TreePrivateKey) placedIn(t RatchetTree, check func(x NodeIndex, priv, pub []byte) error) error {
	size, err := t.checkShape()
	if err != nil {
		return err
	}
	x, ok := leafNode(k.Leaf, size)
	if !ok || t.leafAt(x) == nil {
		return fmt.Errorf("mls: private key's leaf %d is blank or outside the tree", k.Leaf)
	}
	if check != nil {
		if err := check(x, k.EncryptionPriv, t.leafAt(x).EncryptionKey); err != nil {
			return fmt.Errorf("mls: leaf %d: %w", k.Leaf, err)
		}
	}
	for _, y := range slices.Sorted(maps.Keys(k.PathPrivs)) {
		if y.isLeaf() || !y.inTree(size) || !nodeBelow(x, y) {
			return fmt.Errorf("mls: private key for node %d, which is not above leaf %d", y, k.Leaf)
		}
		p := t.parentAt(y)
		if p == nil {
			return fmt.Errorf("mls: private key for blank node %d", y)
		}
		if check == nil {
			continue
		}
		if err := check(y, k.PathPrivs[y], p.EncryptionKey); err != nil {
			return fmt.Errorf("mls: node %d: %w", y, err)
		}
	}
	return nil
}

// checkKeyPair is checkKeyPair for the key k holds for node x, using the
// public key recorded when it was derived if there is one.
func (k *TreePrivateKey) checkKeyPair(s *CipherSuite, x NodeIndex, priv, pub []byte) error {
	if p, ok := k.parsedFor(x, priv); ok {
		if sha256.Sum256(pub) != p.pubHash {
			return fmt.Errorf("mls: private key does not match the public key in the tree")
		}
		return nil
	}
	return checkKeyPair(s, priv, pub)
}

func checkKeyPair(s *CipherSuite, priv, pub []byte) error {
	_, err := checkKeyPairParsed(s, priv, pub)
	return err
}

// checkKeyPairParsed is checkKeyPair also returning the parsed private key
// (nil for X448).
func checkKeyPairParsed(s *CipherSuite, priv, pub []byte) (hpke.PrivateKey, error) {
	got, sk, err := s.hpkePublicKey(priv)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, pub) {
		return nil, fmt.Errorf("mls: private key does not match the public key in the tree")
	}
	return sk, nil
}

// prune drops, zeroing them, the keys of nodes that are blank in t or not
// above the leaf: a blanked node's old key must not outlive it (RFC 9420
// section 7.4 asks to delete replaced key material).
func (k *TreePrivateKey) prune(t RatchetTree) {
	size := t.LeafCount()
	x, _ := leafNode(k.Leaf, size)
	for y, priv := range k.PathPrivs {
		if t.parentAt(y) == nil || !y.inTree(size) || !nodeBelow(x, y) {
			zero(priv)
			delete(k.PathPrivs, y)
			k.dropParsed(y)
		}
	}
}

// Prune forgets the keys of nodes that t has blanked, as Update and Remove
// proposals do. DecryptUpdatePath prunes on its own; call this after a
// Commit without a path.
func (k *TreePrivateKey) Prune(t RatchetTree) { k.prune(t) }

// MarshalMLS encodes the state for persistence: leaf index, leaf key, then
// (node, key) pairs in node order so the encoding is deterministic.
func (k *TreePrivateKey) MarshalMLS(w *wire.Writer) {
	w.U32(uint32(k.Leaf))
	w.Opaque(k.EncryptionPriv)
	w.Vector(func(w *wire.Writer) {
		for _, x := range slices.Sorted(maps.Keys(k.PathPrivs)) {
			w.U32(uint32(x))
			w.Opaque(k.PathPrivs[x])
		}
	})
}

// UnmarshalMLS decodes MarshalMLS's output, rejecting a node listed twice or
// a leaf position among the path keys.
func (k *TreePrivateKey) UnmarshalMLS(r *wire.Reader) {
	*k = TreePrivateKey{PathPrivs: make(map[NodeIndex][]byte)}
	k.Leaf = LeafIndex(r.U32())
	k.EncryptionPriv = r.Opaque()
	r.Vector(func(r *wire.Reader) {
		x := NodeIndex(r.U32())
		priv := r.Opaque()
		if r.Err() != nil {
			return
		}
		if _, dup := k.PathPrivs[x]; dup || x.isLeaf() {
			r.Failf("mls: tree private key lists node %d twice or at a leaf position", x)
			return
		}
		k.PathPrivs[x] = priv
	})
}
