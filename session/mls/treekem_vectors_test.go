package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() { registerVectorChecker("treekem", checkTreeKEMVectors) }

type treeKEMVector struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          LeafIndex `json:"index"`
		EncryptionPriv hexBytes  `json:"encryption_priv"`
		SignaturePriv  hexBytes  `json:"signature_priv"`
		PathSecrets    []struct {
			Node       NodeIndex `json:"node"`
			PathSecret hexBytes  `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        LeafIndex  `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

// treeKEMCase is one decoded vector with its members' private states.
type treeKEMCase struct {
	s       *CipherSuite
	tc      *treeKEMVector
	tree    RatchetTree
	privs   map[LeafIndex]*TreePrivateKey
	sigPriv map[LeafIndex][]byte
}

func checkTreeKEMVectors(t *testing.T, data []byte) {
	cases := decodeVectors[treeKEMVector](t, data)
	for i := range cases {
		tc := &cases[i]
		t.Run(fmt.Sprintf("case%d_suite%d", i, tc.CipherSuite), func(t *testing.T) {
			c := &treeKEMCase{
				s:       mustSuite(t, tc.CipherSuite),
				tc:      tc,
				tree:    decodeTree(t, tc.RatchetTree),
				privs:   make(map[LeafIndex]*TreePrivateKey),
				sigPriv: make(map[LeafIndex][]byte),
			}
			c.loadPrivateStates(t)
			if len(tc.UpdatePaths) == 0 {
				t.Fatal("vector has no update path")
			}
			for j, up := range tc.UpdatePaths {
				t.Run(fmt.Sprintf("path%d_sender%d", j, up.Sender), func(t *testing.T) {
					var path UpdatePath
					if err := wire.Unmarshal(up.UpdatePath, &path); err != nil {
						t.Fatalf("decoding update_path: %v", err)
					}
					c.checkVectorPath(t, up.Sender, &path, up.PathSecrets, up.CommitSecret, up.TreeHashAfter)
					c.checkOwnPath(t, up.Sender)
				})
			}
		})
	}
}

// loadPrivateStates builds each listed member's private state from its leaf
// key and path secrets, and checks it against the public tree.
func (c *treeKEMCase) loadPrivateStates(t *testing.T) {
	t.Helper()
	for _, lp := range c.tc.LeavesPrivate {
		k := &TreePrivateKey{Leaf: lp.Index, EncryptionPriv: lp.EncryptionPriv, PathPrivs: make(map[NodeIndex][]byte)}
		for _, ps := range lp.PathSecrets {
			priv, _, err := deriveNodeKeyPair(c.s, ps.PathSecret)
			if err != nil {
				t.Fatalf("leaf %d node %d: %v", lp.Index, ps.Node, err)
			}
			k.PathPrivs[ps.Node] = priv
		}
		if err := k.ConsistentWith(c.s, c.tree); err != nil {
			t.Fatalf("private state of leaf %d: %v", lp.Index, err)
		}
		c.privs[lp.Index] = k
		c.sigPriv[lp.Index] = lp.SignaturePriv
	}
	for l := range c.tree.LeafCount() {
		if c.tree.Leaf(LeafIndex(l)) != nil && c.privs[LeafIndex(l)] == nil {
			t.Fatalf("vector has no private state for leaf %d", l)
		}
	}
}

// groupContext encodes the provisional GroupContext test-vectors.md fixes
// for the tree after the path is merged.
func (c *treeKEMCase) groupContext(t *testing.T, tree RatchetTree) []byte {
	t.Helper()
	th, err := tree.TreeHash(c.s)
	if err != nil {
		t.Fatal(err)
	}
	gc := GroupContext{
		Version:                 ProtocolMLS10,
		CipherSuite:             c.s.ID,
		GroupID:                 c.tc.GroupID,
		Epoch:                   c.tc.Epoch,
		TreeHash:                th,
		ConfirmedTranscriptHash: c.tc.ConfirmedTranscriptHash,
	}
	b, err := wire.Marshal(&gc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// others lists the non-blank leaves other than sender.
func (c *treeKEMCase) others(sender LeafIndex) []LeafIndex {
	var out []LeafIndex
	for l := range c.tree.LeafCount() {
		if LeafIndex(l) != sender && c.tree.Leaf(LeafIndex(l)) != nil {
			out = append(out, LeafIndex(l))
		}
	}
	return out
}

func (c *treeKEMCase) checkVectorPath(t *testing.T, sender LeafIndex, path *UpdatePath, pathSecrets []hexBytes, commitSecret, treeHashAfter []byte) {
	merged := c.tree.Clone()
	if err := merged.MergeUpdatePath(c.s, sender, path, c.tc.GroupID); err != nil {
		t.Fatalf("MergeUpdatePath: %v", err)
	}
	th, err := merged.TreeHash(c.s)
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, "tree_hash_after", th, treeHashAfter)
	if err := merged.VerifyParentHashes(c.s); err != nil {
		t.Errorf("merged tree: %v", err)
	}
	gc := c.groupContext(t, merged)
	if uint32(len(pathSecrets)) != c.tree.LeafCount() {
		t.Fatalf("vector has %d path secrets for %d leaves", len(pathSecrets), c.tree.LeafCount())
	}
	for _, j := range c.others(sender) {
		newPriv, commit, ps, err := decryptUpdatePath(c.s, merged, c.privs[j], sender, path, gc, nil)
		if err != nil {
			t.Fatalf("leaf %d decrypting: %v", j, err)
		}
		expectEqual(t, fmt.Sprintf("leaf %d path secret", j), ps, pathSecrets[j])
		expectEqual(t, fmt.Sprintf("leaf %d commit secret", j), commit, commitSecret)
		if err := newPriv.ConsistentWith(c.s, merged); err != nil {
			t.Errorf("leaf %d new private state: %v", j, err)
		}
	}
}

// checkOwnPath has the sender commit again with our code and every other
// member process the result.
func (c *treeKEMCase) checkOwnPath(t *testing.T, sender LeafIndex) {
	sigPriv := c.sigPriv[sender]
	if sigPriv == nil {
		t.Fatalf("vector has no signature key for sender %d", sender)
	}
	committed := c.tree.Clone()
	pending, err := committed.PrepareUpdatePath(c.s, sender, c.tree.Leaf(sender), sigPriv, c.tc.GroupID)
	if err != nil {
		t.Fatalf("PrepareUpdatePath: %v", err)
	}
	defer pending.Wipe()
	gc := c.groupContext(t, committed)
	path, err := pending.Encrypt(c.s, committed, gc, nil)
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	if err := committed.VerifyParentHashes(c.s); err != nil {
		t.Errorf("committer's tree: %v", err)
	}
	if err := pending.PrivateKey().ConsistentWith(c.s, committed); err != nil {
		t.Errorf("committer's private state: %v", err)
	}
	// Receivers get the path on the wire.
	enc, err := wire.Marshal(path)
	if err != nil {
		t.Fatal(err)
	}
	var received UpdatePath
	if err := wire.Unmarshal(enc, &received); err != nil {
		t.Fatal(err)
	}
	merged := c.tree.Clone()
	if err := merged.MergeUpdatePath(c.s, sender, &received, c.tc.GroupID); err != nil {
		t.Fatalf("MergeUpdatePath of our own path: %v", err)
	}
	want, _ := wire.Marshal(&committed)
	got, _ := wire.Marshal(&merged)
	if !bytes.Equal(got, want) {
		t.Fatal("receiver's merged tree differs from the committer's")
	}
	for _, j := range c.others(sender) {
		_, commit, err := DecryptUpdatePath(c.s, merged, c.privs[j], sender, &received, gc, nil)
		if err != nil {
			t.Fatalf("leaf %d decrypting our path: %v", j, err)
		}
		expectEqual(t, fmt.Sprintf("leaf %d commit secret of our path", j), commit, pending.CommitSecret())
	}
}
