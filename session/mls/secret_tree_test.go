package mls

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"
)

func stSuite(t testing.TB) *CipherSuite {
	t.Helper()
	s, err := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func stNewTree(t testing.TB, leaves uint32, cfg SecretTreeConfig) *SecretTree {
	t.Helper()
	s := stSuite(t)
	st, err := NewSecretTree(s, bytes.Repeat([]byte{0x5a}, s.Nh()), leaves, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// stInOrderKeys returns the keys of generations 0..n-1 of one ratchet, taken
// with Next from a fresh tree, as the reference for receivers.
func stInOrderKeys(t *testing.T, leaf uint32, typ RatchetType, n int) (keys, nonces [][]byte) {
	t.Helper()
	st := stNewTree(t, 4, SecretTreeConfig{})
	for want := range n {
		g, k, nc, err := st.Next(leaf, typ)
		if err != nil || g != uint32(want) {
			t.Fatalf("Next = %d, %v; want generation %d", g, err, want)
		}
		keys, nonces = append(keys, k), append(nonces, nc)
	}
	return keys, nonces
}

func stGet(t *testing.T, st *SecretTree, leaf uint32, typ RatchetType, g uint32) ([]byte, []byte) {
	t.Helper()
	k, n, err := st.Get(leaf, typ, g)
	if err != nil {
		t.Fatalf("Get(leaf %d, %s, %d): %v", leaf, typ, g, err)
	}
	return k, n
}

func TestSecretTreeOutOfOrder(t *testing.T) {
	keys, nonces := stInOrderKeys(t, 1, ApplicationRatchet, 8)
	st := stNewTree(t, 4, SecretTreeConfig{})
	for _, g := range []uint32{5, 3, 0, 7, 4, 1, 6, 2} {
		k, n := stGet(t, st, 1, ApplicationRatchet, g)
		if !bytes.Equal(k, keys[g]) || !bytes.Equal(n, nonces[g]) {
			t.Errorf("generation %d: key/nonce differ from the in-order derivation", g)
		}
	}
	// The handshake ratchet of the same leaf is independent.
	hk, _ := stInOrderKeys(t, 1, HandshakeRatchet, 1)
	if k, _ := stGet(t, st, 1, HandshakeRatchet, 0); !bytes.Equal(k, hk[0]) {
		t.Error("handshake generation 0 differs from the in-order derivation")
	}
}

func TestSecretTreeReplay(t *testing.T) {
	st := stNewTree(t, 2, SecretTreeConfig{})
	for _, g := range []uint32{0, 3, 1} {
		stGet(t, st, 0, HandshakeRatchet, g)
		if _, _, err := st.Get(0, HandshakeRatchet, g); !errors.Is(err, ErrGenerationConsumed) {
			t.Errorf("replay of generation %d: err = %v, want ErrGenerationConsumed", g, err)
		}
	}
	// Generation 2 was skipped, not used, so it is still there.
	stGet(t, st, 0, HandshakeRatchet, 2)
}

func TestSecretTreeMaxForward(t *testing.T) {
	st := stNewTree(t, 2, SecretTreeConfig{MaxForwardRatchet: 10})
	if _, _, err := st.Get(0, ApplicationRatchet, 11); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("11 ahead of 0 with limit 10: err = %v, want ErrGenerationTooFar", err)
	}
	stGet(t, st, 0, ApplicationRatchet, 10)
	// The limit is relative to the ratchet's position, now 11.
	if _, _, err := st.Get(0, ApplicationRatchet, 22); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("22 with next 11 and limit 10: err = %v, want ErrGenerationTooFar", err)
	}
	stGet(t, st, 0, ApplicationRatchet, 21)

	def := stNewTree(t, 2, SecretTreeConfig{})
	if _, _, err := def.Get(1, ApplicationRatchet, DefaultMaxForwardRatchet+1); !errors.Is(err, ErrGenerationTooFar) {
		t.Fatalf("default limit: err = %v, want ErrGenerationTooFar", err)
	}
	stGet(t, def, 1, ApplicationRatchet, DefaultMaxForwardRatchet)
}

func TestSecretTreeTolerance(t *testing.T) {
	const tol = 3
	st := stNewTree(t, 2, SecretTreeConfig{OutOfOrderTolerance: tol})
	stGet(t, st, 0, ApplicationRatchet, 10)
	if _, _, err := st.Get(0, ApplicationRatchet, 10-tol-1); !errors.Is(err, ErrGenerationConsumed) {
		t.Errorf("generation below the window: err = %v, want ErrGenerationConsumed", err)
	}
	stGet(t, st, 0, ApplicationRatchet, 10-tol)
	// Advancing by two moves the window past 8; 9 stays.
	stGet(t, st, 0, ApplicationRatchet, 12)
	if _, _, err := st.Get(0, ApplicationRatchet, 8); !errors.Is(err, ErrGenerationConsumed) {
		t.Errorf("generation that left the window: err = %v, want ErrGenerationConsumed", err)
	}
	stGet(t, st, 0, ApplicationRatchet, 9)

	// However far and however often the ratchet jumps, at most tol keys stay.
	for g := uint32(20); g < 2000; g += 37 {
		stGet(t, st, 0, ApplicationRatchet, g)
		if n := len(st.ratchets[0].application.kept); n > tol {
			t.Fatalf("after generation %d, %d keys kept, want at most %d", g, n, tol)
		}
	}
}

func TestSecretTreeBadInput(t *testing.T) {
	s := stSuite(t)
	secret := make([]byte, s.Nh())
	for _, n := range []uint32{0, 3, 6, 1<<31 + 1, math.MaxUint32} {
		if _, err := NewSecretTree(s, secret, n, SecretTreeConfig{}); err == nil {
			t.Errorf("NewSecretTree accepted %d leaves", n)
		}
	}
	if _, err := NewSecretTree(s, secret[1:], 2, SecretTreeConfig{}); err == nil {
		t.Error("NewSecretTree accepted a short encryption secret")
	}
	if _, err := NewSecretTree(nil, secret, 2, SecretTreeConfig{}); err == nil {
		t.Error("NewSecretTree accepted a nil suite")
	}

	st := stNewTree(t, 4, SecretTreeConfig{})
	for _, leaf := range []uint32{4, 5, 1 << 31, math.MaxUint32} {
		if _, _, _, err := st.Next(leaf, ApplicationRatchet); err == nil {
			t.Errorf("Next accepted leaf %d of 4", leaf)
		}
		if _, _, err := st.Get(leaf, HandshakeRatchet, 0); err == nil {
			t.Errorf("Get accepted leaf %d of 4", leaf)
		}
	}
	for _, typ := range []RatchetType{0, 3, 255} {
		if _, _, err := st.Get(0, typ, 0); err == nil {
			t.Errorf("Get accepted ratchet type %d", typ)
		}
	}
	if _, _, err := st.Get(0, ApplicationRatchet, math.MaxUint32); !errors.Is(err, ErrGenerationTooFar) {
		t.Errorf("generation 2^32-1 on a fresh ratchet: err = %v, want ErrGenerationTooFar", err)
	}
}

func TestSecretTreeNextIncreasing(t *testing.T) {
	st := stNewTree(t, 2, SecretTreeConfig{})
	var seen [][]byte
	for want := range uint32(50) {
		g, k, _, err := st.Next(1, ApplicationRatchet)
		if err != nil || g != want {
			t.Fatalf("Next = %d, %v; want generation %d", g, err, want)
		}
		for _, prev := range seen {
			if bytes.Equal(prev, k) {
				t.Fatalf("generation %d repeats an earlier key", g)
			}
		}
		seen = append(seen, k)
	}
	// What the sender took is gone for Get as well: an echo of our own
	// message must not yield the key we encrypted with.
	if _, _, err := st.Get(1, ApplicationRatchet, 10); !errors.Is(err, ErrGenerationConsumed) {
		t.Errorf("Get of a generation Next handed out: err = %v, want ErrGenerationConsumed", err)
	}
	// A receiver jump on the same ratchet makes Next continue after it.
	stGet(t, st, 1, ApplicationRatchet, 60)
	if g, _, _, err := st.Next(1, ApplicationRatchet); err != nil || g != 61 {
		t.Errorf("Next after Get(60) = %d, %v; want 61", g, err)
	}
}

func TestSecretTreeConcurrentNext(t *testing.T) {
	st := stNewTree(t, 2, SecretTreeConfig{})
	const workers, each = 8, 50
	gens := make(chan uint32, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				g, _, _, err := st.Next(0, ApplicationRatchet)
				if err != nil {
					t.Error(err)
					return
				}
				gens <- g
			}
		})
	}
	wg.Wait()
	close(gens)
	seen := map[uint32]bool{}
	for g := range gens {
		if seen[g] {
			t.Fatalf("generation %d handed out twice", g)
		}
		seen[g] = true
	}
}

func TestSecretTreeGenerationNeverWraps(t *testing.T) {
	st := stNewTree(t, 2, SecretTreeConfig{})
	stGet(t, st, 0, ApplicationRatchet, 0)
	r := &st.ratchets[0].application
	r.next = math.MaxUint32 - 1 // pretend 2^32-2 messages went by
	for _, want := range []uint32{math.MaxUint32 - 1, math.MaxUint32} {
		if g, _, _, err := st.Next(0, ApplicationRatchet); err != nil || g != want {
			t.Fatalf("Next = %d, %v; want %d", g, err, want)
		}
	}
	if r.secret != nil {
		t.Error("ratchet secret kept after the last generation")
	}
	if g, _, _, err := st.Next(0, ApplicationRatchet); err == nil {
		t.Fatalf("Next after generation 2^32-1 returned generation %d", g)
	}
	if _, _, err := st.Get(0, ApplicationRatchet, 0); err == nil {
		t.Error("Get of generation 0 succeeded on an exhausted ratchet")
	}
}

func TestSecretTreeDeletionSchedule(t *testing.T) {
	st := stNewTree(t, 4, SecretTreeConfig{})
	root := st.nodes[3]
	stGet(t, st, 0, ApplicationRatchet, 0)
	if !stAllZero(root) {
		t.Error("root secret not zeroed after its children were derived")
	}
	// Leaf 0's path (3, 1, 0) is consumed; the copath secrets remain.
	if got := slices.Sorted(maps.Keys(st.nodes)); !slices.Equal(got, []NodeIndex{2, 5}) {
		t.Errorf("stored tree secrets = %v, want [2 5]", got)
	}
	hs := st.ratchets[0].handshake.secret
	as := st.ratchets[0].application.secret
	stGet(t, st, 0, ApplicationRatchet, 1)
	if stAllZero(hs) || !stAllZero(as) {
		t.Error("want only the advanced ratchet's replaced secret zeroed")
	}
	// Leaf 3 consumes node 5; leaf 2 then uses its stored leaf secret.
	stGet(t, st, 3, HandshakeRatchet, 0)
	stGet(t, st, 2, HandshakeRatchet, 0)
	stGet(t, st, 1, HandshakeRatchet, 0)
	if len(st.nodes) != 0 {
		t.Errorf("tree secrets left after every leaf started: %v", slices.Collect(maps.Keys(st.nodes)))
	}
}

func TestSecretTreeWipe(t *testing.T) {
	st := stNewTree(t, 4, SecretTreeConfig{})
	stGet(t, st, 0, ApplicationRatchet, 5) // keeps keys 0..4
	var held [][]byte
	for _, s := range st.nodes {
		held = append(held, s)
	}
	for _, lr := range st.ratchets {
		held = append(held, lr.handshake.secret, lr.application.secret)
		for _, mk := range lr.application.kept {
			held = append(held, mk.key, mk.nonce)
		}
	}
	if len(held) != 2+2+2*5 {
		t.Fatalf("holding %d secrets, want 14", len(held))
	}
	st.Wipe()
	for i, s := range held {
		if !stAllZero(s) {
			t.Errorf("secret %d not zeroed by Wipe", i)
		}
	}
	if _, _, _, err := st.Next(0, ApplicationRatchet); err == nil {
		t.Error("Next works after Wipe")
	}
	if _, _, err := st.Get(0, ApplicationRatchet, 3); err == nil {
		t.Error("Get works after Wipe")
	}
	st.Wipe() // idempotent
}

func TestSecretTreeSenderDataSample(t *testing.T) {
	s := stSuite(t)
	secret := bytes.Repeat([]byte{7}, s.Nh())
	long := bytes.Repeat([]byte{1}, s.Nh()+10)
	k1, n1, err := SenderDataKeyNonce(s, secret, long)
	if err != nil {
		t.Fatal(err)
	}
	long[len(long)-1] ^= 0xff // past the sample: no effect
	k2, n2, _ := SenderDataKeyNonce(s, secret, long)
	if !bytes.Equal(k1, k2) || !bytes.Equal(n1, n2) {
		t.Error("bytes past the first Nh changed the sender data key")
	}
	if len(k1) != s.KeySize || len(n1) != s.NonceSize {
		t.Errorf("key/nonce sizes %d/%d, want %d/%d", len(k1), len(n1), s.KeySize, s.NonceSize)
	}
	short := []byte{1, 2, 3}
	k3, _, _ := SenderDataKeyNonce(s, secret, short)
	want, _ := s.ExpandWithLabel(secret, "key", short, s.KeySize)
	if !bytes.Equal(k3, want) {
		t.Error("a short ciphertext is not used whole")
	}
}

func stAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return len(b) > 0
}

func TestTreeMathInvalidInput(t *testing.T) {
	for _, n := range []uint32{0, 3, 5, 6, 7, 12, 1<<31 + 1, 1 << 30 * 3, math.MaxUint32} {
		if w, ok := nodeWidth(n); ok {
			t.Errorf("nodeWidth(%d) = %d, want invalid", n, w)
		}
		if r, ok := rootNode(n); ok {
			t.Errorf("rootNode(%d) = %d, want invalid", n, r)
		}
		if x, ok := leafNode(0, n); ok {
			t.Errorf("leafNode(0, %d) = %d, want invalid", n, x)
		}
		if _, ok := NodeIndex(0).parent(n); ok {
			t.Errorf("parent(0) in a tree of %d leaves, want invalid", n)
		}
	}
	const n = 8 // nodes 0..14, root 7
	type rel struct {
		name string
		f    func(NodeIndex) (NodeIndex, bool)
	}
	rels := []rel{
		{"left", func(x NodeIndex) (NodeIndex, bool) { return x.left(n) }},
		{"right", func(x NodeIndex) (NodeIndex, bool) { return x.right(n) }},
		{"parent", func(x NodeIndex) (NodeIndex, bool) { return x.parent(n) }},
		{"sibling", func(x NodeIndex) (NodeIndex, bool) { return x.sibling(n) }},
	}
	for _, r := range rels {
		for _, x := range []NodeIndex{15, 16, 31, 1 << 31, math.MaxUint32} {
			if y, ok := r.f(x); ok {
				t.Errorf("%s(%d) outside the tree = %d, want invalid", r.name, x, y)
			}
		}
	}
	for _, x := range []NodeIndex{0, 2, 8, 14} {
		for _, r := range rels[:2] {
			if y, ok := r.f(x); ok {
				t.Errorf("%s of leaf %d = %d, want invalid", r.name, x, y)
			}
		}
	}
	for _, r := range rels[2:] {
		if y, ok := r.f(7); ok {
			t.Errorf("%s of the root = %d, want invalid", r.name, y)
		}
	}
	if x, ok := leafNode(n, n); ok {
		t.Errorf("leafNode(8, 8) = %d, want invalid", x)
	}
	if l, ok := NodeIndex(5).leaf(n); ok {
		t.Errorf("leaf of parent node 5 = %d, want invalid", l)
	}
	if l, ok := NodeIndex(16).leaf(n); ok {
		t.Errorf("leaf of node 16 outside the tree = %d, want invalid", l)
	}
	if p, ok := NodeIndex(15).directPath(n); ok {
		t.Errorf("directPath(15) = %v, want invalid", p)
	}
	if p, ok := NodeIndex(15).copath(n); ok {
		t.Errorf("copath(15) = %v, want invalid", p)
	}
	if a, ok := commonAncestor(0, 15, n); ok {
		t.Errorf("commonAncestor(0, 15) = %d, want invalid", a)
	}
}

func TestTreeMathLargestTree(t *testing.T) {
	const n = 1 << 31
	if w, ok := nodeWidth(n); !ok || w != math.MaxUint32 {
		t.Fatalf("nodeWidth(2^31) = %d, %v", w, ok)
	}
	last, ok := leafNode(n-1, n)
	if !ok || last != math.MaxUint32-1 {
		t.Fatalf("leafNode(2^31-1) = %d, %v", last, ok)
	}
	path, ok := last.directPath(n)
	if !ok || len(path) != 31 || path[30] != 1<<31-1 {
		t.Fatalf("directPath of the last leaf: %d nodes, ok %v", len(path), ok)
	}
	if s, ok := NodeIndex(1<<30 - 1).sibling(n); !ok || s != 3<<30-1 {
		t.Errorf("sibling of the root's left child = %d, %v", s, ok)
	}
	if a, ok := commonAncestor(0, last, n); !ok || a != 1<<31-1 {
		t.Errorf("commonAncestor(first, last) = %d, %v", a, ok)
	}
	if _, ok := NodeIndex(math.MaxUint32).parent(n); ok {
		t.Error("node 2^32-1 accepted in a tree of 2^31 leaves")
	}
}

// TestTreeMathPaths checks the path functions against their definitions in
// RFC 9420 section 4.1 and the semantic common ancestor of appendix C.
func TestTreeMathPaths(t *testing.T) {
	for n := uint32(1); n <= 64; n *= 2 {
		w, _ := nodeWidth(n)
		root, _ := rootNode(n)
		for x := NodeIndex(0); uint32(x) < w; x++ {
			var want, wantCo []NodeIndex
			for y := x; y != root; {
				s, _ := y.sibling(n)
				wantCo = append(wantCo, s)
				y, _ = y.parent(n)
				want = append(want, y)
			}
			if got, ok := x.directPath(n); !ok || !slices.Equal(got, want) {
				t.Errorf("n=%d directPath(%d) = %v, want %v", n, x, got, want)
			}
			if got, ok := x.copath(n); !ok || !slices.Equal(got, wantCo) {
				t.Errorf("n=%d copath(%d) = %v, want %v", n, x, got, wantCo)
			}
			if leaf, ok := x.leaf(n); ok != x.isLeaf() || (ok && NodeIndex(2*leaf) != x) {
				t.Errorf("n=%d leaf(%d) = %d, %v", n, x, leaf, ok)
			}
			for y := NodeIndex(0); uint32(y) < w; y++ {
				got, ok := commonAncestor(x, y, n)
				if want := semanticCommonAncestor(x, y, n); !ok || got != want {
					t.Errorf("n=%d commonAncestor(%d, %d) = %d, want %d", n, x, y, got, want)
				}
			}
		}
	}
}

func semanticCommonAncestor(x, y NodeIndex, n uint32) NodeIndex {
	ancestors := func(z NodeIndex) []NodeIndex {
		p, _ := z.directPath(n)
		return append([]NodeIndex{z}, p...)
	}
	ay := ancestors(y)
	for _, a := range ancestors(x) { // lowest first
		if slices.Contains(ay, a) {
			return a
		}
	}
	panic("no common ancestor")
}
