package mls

import (
	"bytes"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
)

// TreeKEM (RFC 9420 sections 7.4-7.6 and 12.4.2): creating, merging and
// decrypting the UpdatePath of a Commit.

const labelUpdatePathNode = "UpdatePathNode"

// PendingPath is a committer's UpdatePath between its creation and the
// Commit being sent: the path secrets, which Encrypt needs once the
// provisional GroupContext is known and the Welcome needs for new members,
// and the new private keys. Call Wipe once it is no longer needed.
type PendingPath struct {
	leaf         LeafIndex
	size         uint32
	steps        []pathStep
	pathSecrets  [][]byte // per step
	nodePrivs    [][]byte // per step
	nodePubs     [][]byte // per step
	leafPriv     []byte
	leafPub      []byte
	commitSecret []byte
	// Parsed forms of leafPriv and nodePrivs (nil for X448).
	leafSK  hpke.PrivateKey
	nodeSKs []hpke.PrivateKey
}

// Wipe zeroes every secret p holds.
func (p *PendingPath) Wipe() {
	zeroAll(p.pathSecrets...)
	zeroAll(p.nodePrivs...)
	zeroAll(p.leafPriv, p.commitSecret)
	p.steps, p.pathSecrets, p.nodePrivs, p.leafPriv, p.commitSecret = nil, nil, nil, nil, nil
	p.leafSK, p.nodeSKs = nil, nil
}

// CommitSecret returns a copy of the commit secret (path_secret[n+1]); the
// caller zeroes its copy.
func (p *PendingPath) CommitSecret() []byte { return bytes.Clone(p.commitSecret) }

// PathSecretFor returns a copy of the path secret of node ancestor, which a
// Welcome gives a new member for the lowest common ancestor of its leaf and
// the committer's; nil if ancestor is not on the filtered direct path.
func (p *PendingPath) PathSecretFor(ancestor NodeIndex) []byte {
	for i, st := range p.steps {
		if st.node == ancestor {
			return bytes.Clone(p.pathSecrets[i])
		}
	}
	return nil
}

// PathSecretForLeaf is PathSecretFor the lowest common ancestor of member and
// the committer, with that ancestor.
func (p *PendingPath) PathSecretForLeaf(member LeafIndex) ([]byte, NodeIndex, error) {
	x, ok1 := leafNode(member, p.size)
	y, ok2 := leafNode(p.leaf, p.size)
	if !ok1 || !ok2 || member == p.leaf {
		return nil, 0, fmt.Errorf("mls: leaf %d is not another leaf of the committed tree", member)
	}
	a, _ := commonAncestor(x, y, p.size)
	secret := p.PathSecretFor(a)
	if secret == nil {
		return nil, 0, fmt.Errorf("mls: node %d is not on the committer's filtered direct path", a)
	}
	return secret, a, nil
}

// PrivateKey returns the committer's private state after the Commit: the new
// leaf key and the key of every node it just set. All other nodes on its
// direct path are blank now, so no older key survives.
func (p *PendingPath) PrivateKey() *TreePrivateKey {
	k := &TreePrivateKey{
		Leaf:           p.leaf,
		EncryptionPriv: bytes.Clone(p.leafPriv),
		PathPrivs:      make(map[NodeIndex][]byte, len(p.steps)),
	}
	k.setParsedKeep(NodeIndex(2*p.leaf), k.EncryptionPriv, p.leafSK, p.leafPub)
	for i, st := range p.steps {
		k.PathPrivs[st.node] = bytes.Clone(p.nodePrivs[i])
		if i < len(p.nodeSKs) {
			k.setParsed(st.node, k.PathPrivs[st.node], p.nodeSKs[i], p.nodePubs[i])
		}
	}
	return k
}

// deriveNodeKeyPair is node_secret = DeriveSecret(path_secret, "node") then
// KEM.DeriveKeyPair(node_secret); the node secret exists only here.
func deriveNodeKeyPair(s *CipherSuite, pathSecret []byte) (priv, pub []byte, err error) {
	priv, pub, _, err = deriveNodeKey(s, pathSecret)
	return priv, pub, err
}

// deriveNodeKey is deriveNodeKeyPair also returning the parsed key.
func deriveNodeKey(s *CipherSuite, pathSecret []byte) (priv, pub []byte, sk hpke.PrivateKey, err error) {
	nodeSecret, err := s.DeriveSecret(pathSecret, "node")
	if err != nil {
		return nil, nil, nil, err
	}
	defer zero(nodeSecret)
	return s.deriveHPKEKey(nodeSecret)
}

// PrepareUpdatePath replaces leaf's direct path in t with fresh keys, as a
// committer does after applying the Commit's proposals (RFC 9420 sections
// 7.4 and 7.5): a new leaf key pair, a path secret and key pair per node of
// the filtered direct path (the other direct path nodes blanked, unmerged
// lists emptied), the parent-hash chain, and the new leaf, signed for groupID
// and leaf. newLeaf supplies what the new leaf keeps (signature key,
// credential, capabilities, extensions); its encryption key, source, lifetime
// and parent hash are replaced. For an external Commit, leaf is the blank
// leaf FreeLeaf returned.
//
// The leaf secret is the seed of the whole path: path_secret[0] =
// DeriveSecret(leaf_secret, "path"), as in the figure of section 7.4.
func (t *RatchetTree) PrepareUpdatePath(s *CipherSuite, leaf LeafIndex, newLeaf *LeafNode, sigPriv, groupID []byte) (*PendingPath, error) {
	if newLeaf == nil {
		return nil, errNilLeaf
	}
	k, err := s.newSigningKey(sigPriv)
	if err != nil {
		return nil, err
	}
	defer k.wipe()
	return t.prepareUpdatePath(s, leaf, newLeaf, k, groupID)
}

func (t *RatchetTree) prepareUpdatePath(s *CipherSuite, leaf LeafIndex, newLeaf *LeafNode, sk *signingKey, groupID []byte) (_ *PendingPath, err error) {
	if newLeaf == nil {
		return nil, errNilLeaf
	}
	size, err := t.checkShape()
	if err != nil {
		return nil, err
	}
	x, ok := leafNode(leaf, size)
	if !ok {
		return nil, fmt.Errorf("mls: leaf %d is outside the tree", leaf)
	}
	steps, _ := t.filteredPath(leaf)
	p := &PendingPath{leaf: leaf, size: size, steps: steps}
	defer func() {
		if err != nil {
			p.Wipe()
		}
	}()

	secret := make([]byte, s.Nh())
	rand.Read(secret)
	defer func() { zero(secret) }()
	if p.leafPriv, p.leafPub, p.leafSK, err = deriveNodeKey(s, secret); err != nil {
		return nil, err
	}
	for range steps {
		next, err := s.DeriveSecret(secret, "path")
		if err != nil {
			return nil, err
		}
		p.pathSecrets = append(p.pathSecrets, next)
		priv, pub, sk, err := deriveNodeKey(s, next)
		if err != nil {
			return nil, err
		}
		p.nodeSKs = append(p.nodeSKs, sk)
		p.nodePrivs = append(p.nodePrivs, priv)
		p.nodePubs = append(p.nodePubs, pub)
		zero(secret)
		secret = bytes.Clone(next) // pathSecrets keeps next; secret is zeroed on return
	}
	if p.commitSecret, err = s.DeriveSecret(secret, "path"); err != nil {
		return nil, err
	}

	copath, err := t.copathHashes(s, steps)
	if err != nil {
		return nil, err
	}
	fields, leafPH, err := pathParentHashes(s, p.nodePubs, copath)
	if err != nil {
		return nil, err
	}
	ln := newLeaf.clone()
	ln.EncryptionKey = bytes.Clone(p.leafPub)
	ln.LeafNodeSource = LeafNodeSourceCommit
	ln.Lifetime = Lifetime{}
	ln.ParentHash = leafPH
	if err := ln.signWith(sk, groupID, leaf); err != nil {
		return nil, err
	}

	t.setPath(x, size, steps, p.nodePubs, fields, ln)
	return p, nil
}

// setPath writes a merged path: the direct path blanked, then the filtered
// direct path set with empty unmerged lists, then the new leaf.
func (t RatchetTree) setPath(x NodeIndex, size uint32, steps []pathStep, keys, fields [][]byte, ln *LeafNode) {
	t.blankDirectPath(x, size)
	for i, st := range steps {
		t[st.node] = &Node{NodeType: NodeTypeParent, Parent: &ParentNode{
			EncryptionKey: bytes.Clone(keys[i]),
			ParentHash:    fields[i],
		}}
	}
	t[x] = &Node{NodeType: NodeTypeLeaf, Leaf: ln}
}

// Encrypt builds the UpdatePath: for each node of the filtered direct path,
// its path secret encrypted to every node of its copath child's resolution,
// leaving out exclude (the leaves the same Commit adds, which get the path
// secret from their Welcome instead). t is the tree PrepareUpdatePath left,
// and groupContext the encoded provisional GroupContext, whose tree hash
// already covers the new path.
func (p *PendingPath) Encrypt(s *CipherSuite, t RatchetTree, groupContext []byte, exclude []LeafIndex) (*UpdatePath, error) {
	if p.commitSecret == nil {
		return nil, errors.New("mls: pending UpdatePath has been wiped")
	}
	if err := p.matches(t); err != nil {
		return nil, err
	}
	out := &UpdatePath{
		LeafNode: *t.leafAt(NodeIndex(2 * p.leaf)).clone(),
		Nodes:    make([]UpdatePathNode, len(p.steps)),
	}
	excluded := excludedNodes(exclude)
	for i, st := range p.steps {
		node := &out.Nodes[i]
		node.EncryptionKey = bytes.Clone(p.nodePubs[i])
		for _, r := range t.Resolution(st.copath) {
			if excluded[r] {
				continue
			}
			pub := t.encryptionKey(r)
			if pub == nil {
				return nil, fmt.Errorf("mls: resolution of node %d holds blank node %d", st.copath, r)
			}
			kem, ct, err := s.EncryptWithLabel(pub, labelUpdatePathNode, groupContext, p.pathSecrets[i])
			if err != nil {
				return nil, fmt.Errorf("mls: encrypting path secret to node %d: %w", r, err)
			}
			node.EncryptedPathSecret = append(node.EncryptedPathSecret, HPKECiphertext{KEMOutput: kem, Ciphertext: ct})
		}
	}
	return out, nil
}

// matches checks that t is still the tree p was prepared on: same size, same
// filtered direct path, the new keys in place. Encrypting against another
// tree would send the secrets to the wrong resolution.
func (p *PendingPath) matches(t RatchetTree) error {
	steps, ok := t.filteredPath(p.leaf)
	mismatch := !ok || t.LeafCount() != p.size || len(steps) != len(p.steps)
	if ln := t.leafAt(NodeIndex(2 * p.leaf)); ln == nil || !bytes.Equal(ln.EncryptionKey, p.leafPub) {
		mismatch = true
	}
	for i := 0; !mismatch && i < len(steps); i++ {
		mismatch = steps[i] != p.steps[i] || !bytes.Equal(t.encryptionKey(steps[i].node), p.nodePubs[i])
	}
	if mismatch {
		return errors.New("mls: tree does not hold the pending UpdatePath")
	}
	return nil
}

func excludedNodes(leaves []LeafIndex) map[NodeIndex]bool {
	m := make(map[NodeIndex]bool, len(leaves))
	for _, l := range leaves {
		if l < maxTreeLeaves {
			m[NodeIndex(2*l)] = true
		}
	}
	return m
}

// MergeUpdatePath validates a received UpdatePath against t, the tree with
// the Commit's proposals applied, and merges it (RFC 9420 sections 7.5 and
// 12.4.2): the path must have one node per node of the sender's filtered
// direct path, a commit-source leaf signed for groupID and sender, and only
// HPKE keys the tree does not hold yet, and the leaf's parent_hash must be
// the head of the chain the new keys form. The leaf node's credential and
// capabilities are the caller's to validate. t is left unchanged on error.
func (t *RatchetTree) MergeUpdatePath(s *CipherSuite, sender LeafIndex, path *UpdatePath, groupID []byte) error {
	if path == nil {
		return errors.New("mls: UpdatePath is nil")
	}
	size, err := t.checkShape()
	if err != nil {
		return err
	}
	x, ok := leafNode(sender, size)
	if !ok {
		return fmt.Errorf("mls: UpdatePath sender %d is outside the tree", sender)
	}
	if path.LeafNode.LeafNodeSource != LeafNodeSourceCommit {
		return fmt.Errorf("mls: UpdatePath leaf_node_source is %d, want commit", path.LeafNode.LeafNodeSource)
	}
	steps, _ := t.filteredPath(sender)
	if len(path.Nodes) != len(steps) {
		return fmt.Errorf("mls: UpdatePath has %d nodes, the sender's filtered direct path %d", len(path.Nodes), len(steps))
	}
	if err := t.checkPathKeysFresh(sender, path); err != nil {
		return err
	}
	keys := make([][]byte, len(steps))
	for i := range path.Nodes {
		keys[i] = path.Nodes[i].EncryptionKey
	}
	copath, err := t.copathHashes(s, steps)
	if err != nil {
		return err
	}
	fields, leafPH, err := pathParentHashes(s, keys, copath)
	if err != nil {
		return err
	}
	if !bytes.Equal(leafPH, path.LeafNode.ParentHash) {
		return errors.New("mls: UpdatePath leaf parent_hash does not match its path")
	}
	if err := path.LeafNode.VerifySignature(s, groupID, sender); err != nil {
		return err
	}
	t.setPath(x, size, steps, keys, fields, path.LeafNode.clone())
	return nil
}

// checkPathKeysFresh requires every HPKE key of the path to be new to the
// tree and distinct (RFC 9420 section 12.4.2: reused keys would let older
// secrets decrypt the new ones), and the leaf's signature key to belong to no
// other member.
func (t RatchetTree) checkPathKeysFresh(sender LeafIndex, path *UpdatePath) error {
	// Sorted, so that equal keys are neighbours: a set of the keys would
	// copy each (1,216 bytes for X-Wing) into a map key.
	type usedKey struct {
		key  []byte
		path bool
	}
	keys := make([]usedKey, 0, len(t)+1+len(path.Nodes))
	for i := range t {
		if key := t.encryptionKey(NodeIndex(i)); key != nil {
			keys = append(keys, usedKey{key: key})
		}
	}
	keys = append(keys, usedKey{key: path.LeafNode.EncryptionKey, path: true})
	for i := range path.Nodes {
		keys = append(keys, usedKey{key: path.Nodes[i].EncryptionKey, path: true})
	}
	for _, k := range keys {
		if k.path && len(k.key) == 0 {
			return errors.New("mls: UpdatePath holds an empty encryption key")
		}
	}
	slices.SortFunc(keys, func(a, b usedKey) int { return bytes.Compare(a.key, b.key) })
	for i := 1; i < len(keys); i++ {
		// A run of equal keys that holds a path key has it next to
		// another of the run.
		if (keys[i].path || keys[i-1].path) && bytes.Equal(keys[i].key, keys[i-1].key) {
			return errors.New("mls: UpdatePath reuses an encryption key")
		}
	}
	for j := 0; j < len(t); j += 2 {
		if ln := t.leafAt(NodeIndex(j)); ln != nil && LeafIndex(j/2) != sender && bytes.Equal(ln.SignatureKey, path.LeafNode.SignatureKey) {
			return fmt.Errorf("mls: UpdatePath leaf reuses the signature key of leaf %d", j/2)
		}
	}
	return nil
}

// DecryptUpdatePath recovers the path secrets of a merged UpdatePath (RFC
// 9420 section 12.4.2): it decrypts the one ciphertext addressed to a node
// priv holds a key for, at the lowest common ancestor of the sender and priv's
// leaf, derives the path above it, and checks every derived public key
// against the path. t is the tree after MergeUpdatePath, groupContext the
// encoded provisional GroupContext and exclude the leaves the Commit adds.
// It returns the member's new private state, with the keys of nodes the
// Commit replaced or blanked removed, and the commit secret. priv is not
// modified; the caller wipes it once the new state is committed.
func DecryptUpdatePath(s *CipherSuite, t RatchetTree, priv *TreePrivateKey, sender LeafIndex, path *UpdatePath, groupContext []byte, exclude []LeafIndex) (newPriv *TreePrivateKey, commitSecret []byte, err error) {
	newPriv, commitSecret, pathSecret, err := decryptUpdatePath(s, t, priv, sender, path, groupContext, exclude)
	zero(pathSecret)
	return newPriv, commitSecret, err
}

// decryptUpdatePath is DecryptUpdatePath also returning the decrypted path
// secret, which the interop vectors check.
func decryptUpdatePath(s *CipherSuite, t RatchetTree, priv *TreePrivateKey, sender LeafIndex, path *UpdatePath, groupContext []byte, exclude []LeafIndex) (_ *TreePrivateKey, _, _ []byte, err error) {
	if priv == nil || path == nil {
		return nil, nil, nil, errors.New("mls: DecryptUpdatePath needs a private key and a path")
	}
	size, err := t.checkShape()
	if err != nil {
		return nil, nil, nil, err
	}
	me, ok1 := leafNode(priv.Leaf, size)
	sx, ok2 := leafNode(sender, size)
	if !ok1 || !ok2 || priv.Leaf == sender {
		return nil, nil, nil, fmt.Errorf("mls: cannot decrypt the UpdatePath of leaf %d at leaf %d", sender, priv.Leaf)
	}
	steps, _ := t.filteredPath(sender)
	if len(path.Nodes) != len(steps) {
		return nil, nil, nil, fmt.Errorf("mls: UpdatePath has %d nodes, the sender's filtered direct path %d", len(path.Nodes), len(steps))
	}
	lca, _ := commonAncestor(me, sx, size)
	k := -1
	for i, st := range steps {
		if st.node == lca {
			k = i
		}
	}
	if k < 0 {
		return nil, nil, nil, fmt.Errorf("mls: leaf %d is not covered by the UpdatePath of leaf %d", priv.Leaf, sender)
	}
	ct, node, key, err := pickCiphertext(t, priv, steps[k].copath, path.Nodes[k].EncryptedPathSecret, excludedNodes(exclude))
	if err != nil {
		return nil, nil, nil, err
	}
	parsed, checked := priv.parsedFor(node, key)
	if !checked {
		// A key restored from saved state, not checked at the load:
		// parsing it for the decryption yields its public key.
		if parsed.sk, err = checkKeyPairParsed(s, key, t.encryptionKey(node)); err != nil {
			return nil, nil, nil, fmt.Errorf("mls: our key for node %d: %w", node, err)
		}
	}
	secret, err := s.decryptWithLabel(key, parsed.sk, labelUpdatePathNode, groupContext, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("mls: decrypting the UpdatePath: %w", err)
	}
	decrypted := bytes.Clone(secret)
	np := priv.Clone()
	// The named results are nil by the time a failing return runs this, so
	// it wipes through the locals.
	defer func() {
		zero(secret)
		if err != nil {
			np.Wipe()
			zero(decrypted)
		}
	}()
	// Every key np held on the sender's direct path is replaced below or
	// belongs to a node the merge blanked.
	for y, ok := sx.parent(size); ok; y, ok = y.parent(size) {
		if old := np.PathPrivs[y]; old != nil {
			zero(old)
			delete(np.PathPrivs, y)
			np.dropParsed(y)
		}
	}
	for i := k; i < len(steps); i++ {
		if i > k {
			next, err := s.DeriveSecret(secret, "path")
			if err != nil {
				return nil, nil, nil, err
			}
			zero(secret)
			secret = next
		}
		nodePriv, nodePub, sk, err := deriveNodeKey(s, secret)
		if err != nil {
			return nil, nil, nil, err
		}
		if !bytes.Equal(nodePub, path.Nodes[i].EncryptionKey) || !bytes.Equal(nodePub, t.encryptionKey(steps[i].node)) {
			zero(nodePriv)
			return nil, nil, nil, fmt.Errorf("mls: path secret for node %d does not yield the UpdatePath's public key", steps[i].node)
		}
		np.PathPrivs[steps[i].node] = nodePriv
		np.setParsed(steps[i].node, nodePriv, sk, nodePub)
	}
	commit, err := s.DeriveSecret(secret, "path")
	if err != nil {
		return nil, nil, nil, err
	}
	np.prune(t)
	return np, commit, decrypted, nil
}

// pickCiphertext finds, in the resolution of the copath child c minus the
// excluded leaves, the node priv has a key for, and the ciphertext sent to
// it (ciphertexts follow resolution order).
func pickCiphertext(t RatchetTree, priv *TreePrivateKey, c NodeIndex, cts []HPKECiphertext, excluded map[NodeIndex]bool) (*HPKECiphertext, NodeIndex, []byte, error) {
	var res []NodeIndex
	for _, r := range t.Resolution(c) {
		if !excluded[r] {
			res = append(res, r)
		}
	}
	if len(cts) != len(res) {
		return nil, 0, nil, fmt.Errorf("mls: UpdatePath has %d ciphertexts for node %d, whose resolution has %d nodes", len(cts), c, len(res))
	}
	for i, r := range res {
		if key := priv.privFor(r); key != nil {
			return &cts[i], r, key, nil
		}
	}
	return nil, 0, nil, fmt.Errorf("mls: no private key for the resolution of node %d", c)
}

// NewTreePrivateKeyFromPathSecret builds a joiner's private state from its
// leaf's private key and the Welcome's path_secret, which belongs to
// ancestor, the lowest common ancestor of leaf and the committer (RFC 9420
// section 12.4.3.1). Above ancestor the secret is ratcheted once per
// non-blank node: after the Commit those are exactly the committer's
// filtered direct path nodes. Every derived key must match the tree. With a
// nil pathSecret (a Commit without path) only the leaf key is set.
func NewTreePrivateKeyFromPathSecret(s *CipherSuite, t RatchetTree, leaf LeafIndex, encPriv []byte, ancestor NodeIndex, pathSecret []byte) (_ *TreePrivateKey, err error) {
	size, err := t.checkShape()
	if err != nil {
		return nil, err
	}
	x, ok := leafNode(leaf, size)
	if !ok || t.leafAt(x) == nil {
		return nil, fmt.Errorf("mls: leaf %d is blank or outside the tree", leaf)
	}
	leafSK, err := checkKeyPairParsed(s, encPriv, t.leafAt(x).EncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("mls: leaf %d: %w", leaf, err)
	}
	k := &TreePrivateKey{Leaf: leaf, EncryptionPriv: bytes.Clone(encPriv), PathPrivs: make(map[NodeIndex][]byte)}
	k.setParsed(x, k.EncryptionPriv, leafSK, bytes.Clone(t.leafAt(x).EncryptionKey))
	if pathSecret == nil {
		return k, nil
	}
	if ancestor.isLeaf() || !ancestor.inTree(size) || !nodeBelow(x, ancestor) || t.parentAt(ancestor) == nil {
		return nil, fmt.Errorf("mls: path secret for node %d, which is not a non-blank ancestor of leaf %d", ancestor, leaf)
	}
	secret := bytes.Clone(pathSecret)
	defer func() {
		zero(secret)
		if err != nil {
			k.Wipe()
		}
	}()
	for y, ok := ancestor, true; ok; y, ok = y.parent(size) {
		p := t.parentAt(y)
		if p == nil {
			continue
		}
		if y != ancestor {
			next, err := s.DeriveSecret(secret, "path")
			if err != nil {
				return nil, err
			}
			zero(secret)
			secret = next
		}
		priv, pub, sk, err := deriveNodeKey(s, secret)
		if err != nil {
			return nil, err
		}
		k.PathPrivs[y] = priv
		k.setParsed(y, priv, sk, pub)
		if !bytes.Equal(pub, p.EncryptionKey) {
			return nil, fmt.Errorf("mls: path secret does not yield the public key of node %d", y)
		}
	}
	return k, nil
}
