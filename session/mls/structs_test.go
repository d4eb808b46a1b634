package mls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

// Hand-built values exercise the branches the official vectors never take
// (x509 credentials, blank and parent tree nodes, inline proposals of every
// type, non-member senders, resumption PSKs). Every byte string is non-empty
// so a decoded value can be compared with reflect.DeepEqual.

func wsCapabilities() Capabilities {
	return Capabilities{
		Versions:     []ProtocolVersion{ProtocolMLS10},
		CipherSuites: []CipherSuiteID{MLS128DHKEMX25519AES128GCMSHA256Ed25519, 0x0a0a},
		Extensions:   []ExtensionType{0x0a0a},
		Proposals:    []ProposalType{0x1a1a},
		Credentials:  []CredentialType{CredentialBasic, CredentialX509},
	}
}

func wsLeaf(src LeafNodeSource) *LeafNode {
	n := &LeafNode{
		EncryptionKey:  []byte("encryption key"),
		SignatureKey:   []byte("signature key"),
		Credential:     Credential{CredentialType: CredentialBasic, Identity: []byte("alice")},
		Capabilities:   wsCapabilities(),
		LeafNodeSource: src,
		Extensions:     Extensions{{Type: ExtApplicationID, Data: []byte("app")}},
		Signature:      []byte("leaf signature"),
	}
	switch src {
	case LeafNodeSourceKeyPackage:
		n.Lifetime = Lifetime{NotBefore: 1, NotAfter: 1 << 40}
		n.Credential = Credential{CredentialType: CredentialX509, Certificates: []Certificate{{[]byte("leaf cert")}, {[]byte("ca cert")}}}
	case LeafNodeSourceCommit:
		n.ParentHash = []byte("parent hash")
	}
	return n
}

func wsKeyPackage() *KeyPackage {
	return &KeyPackage{
		Version:     ProtocolMLS10,
		CipherSuite: MLS128DHKEMX25519AES128GCMSHA256Ed25519,
		InitKey:     []byte("init key"),
		LeafNode:    *wsLeaf(LeafNodeSourceKeyPackage),
		Extensions:  Extensions{{Type: 0x0a0a, Data: []byte("grease")}},
		Signature:   []byte("kp signature"),
	}
}

func wsUpdatePath() *UpdatePath {
	return &UpdatePath{
		LeafNode: *wsLeaf(LeafNodeSourceCommit),
		Nodes: []UpdatePathNode{
			{EncryptionKey: []byte("pk1"), EncryptedPathSecret: []HPKECiphertext{{[]byte("kem1"), []byte("ct1")}, {[]byte("kem2"), []byte("ct2")}}},
			{EncryptionKey: []byte("pk2")},
		},
	}
}

func wsPSKID(t PSKType) PreSharedKeyID {
	if t == PSKExternal {
		return PreSharedKeyID{Type: PSKExternal, PSKID: []byte("psk id"), Nonce: []byte("nonce")}
	}
	return PreSharedKeyID{Type: PSKResumption, Usage: ResumptionBranch, PSKGroupID: []byte("old group"), PSKEpoch: 7, Nonce: []byte("nonce")}
}

func wsProposals() []*Proposal {
	return []*Proposal{
		{ProposalType: ProposalAdd, Add: &Add{KeyPackage: *wsKeyPackage()}},
		{ProposalType: ProposalUpdate, Update: &Update{LeafNode: *wsLeaf(LeafNodeSourceUpdate)}},
		{ProposalType: ProposalRemove, Remove: &Remove{Removed: 5}},
		{ProposalType: ProposalPSK, PreSharedKey: &PreSharedKey{PSK: wsPSKID(PSKResumption)}},
		{ProposalType: ProposalReInit, ReInit: &ReInit{GroupID: []byte("new group"), Version: ProtocolMLS10, CipherSuite: MLS128MLKEM768X25519AES128GCMSHA256Ed25519, Extensions: Extensions{{Type: ExtRequiredCapabilities, Data: []byte{0}}}}},
		{ProposalType: ProposalExternalInit, ExternalInit: &ExternalInit{KEMOutput: []byte("kem output")}},
		{ProposalType: ProposalGroupContextExtensions, GroupContextExtensions: &GroupContextExtensions{Extensions: Extensions{{Type: ExtExternalSenders, Data: []byte("senders")}}}},
	}
}

func wsCommit() *Commit {
	c := &Commit{Path: wsUpdatePath()}
	for _, p := range wsProposals() {
		c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefProposal, Proposal: p})
	}
	c.Proposals = append(c.Proposals, ProposalOrRef{Type: ProposalOrRefReference, Reference: []byte("proposal ref")})
	return c
}

func wsGroupContext() GroupContext {
	return GroupContext{
		Version:                 ProtocolMLS10,
		CipherSuite:             MLS128DHKEMX25519AES128GCMSHA256Ed25519,
		GroupID:                 []byte("group"),
		Epoch:                   3,
		TreeHash:                []byte("tree hash"),
		ConfirmedTranscriptHash: []byte("transcript"),
		Extensions:              Extensions{{Type: ExtExternalPub, Data: []byte("pub")}},
	}
}

func wsGroupInfo() *GroupInfo {
	return &GroupInfo{
		GroupContext:    wsGroupContext(),
		Extensions:      Extensions{{Type: ExtRatchetTree, Data: []byte("tree")}},
		ConfirmationTag: []byte("confirmation tag"),
		Signer:          2,
		Signature:       []byte("gi signature"),
	}
}

func wsWelcome() *Welcome {
	return &Welcome{
		CipherSuite: MLS128DHKEMX25519AES128GCMSHA256Ed25519,
		Secrets: []EncryptedGroupSecrets{
			{NewMember: []byte("kp ref 1"), EncryptedGroupSecrets: HPKECiphertext{[]byte("kem"), []byte("ct")}},
			{NewMember: []byte("kp ref 2"), EncryptedGroupSecrets: HPKECiphertext{[]byte("kem"), []byte("ct")}},
		},
		EncryptedGroupInfo: []byte("encrypted group info"),
	}
}

// wsTree is a three-leaf tree with a blank leaf and a parent with an
// unmerged leaf: [A, P, _, Q, C].
func wsTree() RatchetTree {
	return RatchetTree{
		{NodeType: NodeTypeLeaf, Leaf: wsLeaf(LeafNodeSourceKeyPackage)},
		{NodeType: NodeTypeParent, Parent: &ParentNode{EncryptionKey: []byte("p"), ParentHash: []byte("ph")}},
		nil,
		{NodeType: NodeTypeParent, Parent: &ParentNode{EncryptionKey: []byte("q"), ParentHash: []byte("qh"), UnmergedLeaves: []LeafIndex{2}}},
		{NodeType: NodeTypeLeaf, Leaf: wsLeaf(LeafNodeSourceCommit)},
	}
}

func wsContent(ct ContentType, st SenderType) FramedContent {
	c := FramedContent{
		GroupID:           []byte("group"),
		Epoch:             9,
		Sender:            Sender{SenderType: st},
		AuthenticatedData: []byte("aad"),
		ContentType:       ct,
	}
	switch st {
	case SenderTypeMember:
		c.Sender.LeafIndex = 4
	case SenderTypeExternal:
		c.Sender.SenderIndex = 1
	}
	switch ct {
	case ContentTypeApplication:
		c.ApplicationData = []byte("hello")
	case ContentTypeProposal:
		c.Proposal = wsProposals()[2]
	case ContentTypeCommit:
		c.Commit = wsCommit()
	}
	return c
}

func wsAuth(ct ContentType) FramedContentAuthData {
	a := FramedContentAuthData{Signature: []byte("signature")}
	if ct == ContentTypeCommit {
		a.ConfirmationTag = []byte("confirmation")
	}
	return a
}

func wsPublicMessage(ct ContentType, st SenderType) *PublicMessage {
	m := &PublicMessage{Content: wsContent(ct, st), Auth: wsAuth(ct)}
	if st == SenderTypeMember {
		m.MembershipTag = []byte("membership tag")
	}
	return m
}

func wsPrivateMessage() *PrivateMessage {
	return &PrivateMessage{
		GroupID:             []byte("group"),
		Epoch:               9,
		ContentType:         ContentTypeApplication,
		AuthenticatedData:   []byte("aad"),
		EncryptedSenderData: []byte("sender data"),
		Ciphertext:          []byte("ciphertext"),
	}
}

func wsPrivateContent(ct ContentType, padding int) *PrivateMessageContent {
	c := wsContent(ct, SenderTypeMember)
	return &PrivateMessageContent{
		ContentType:     ct,
		ApplicationData: c.ApplicationData,
		Proposal:        c.Proposal,
		Commit:          c.Commit,
		Auth:            wsAuth(ct),
		Padding:         padding,
	}
}

type wsSample struct {
	name string
	v    wsValue
}

// wsSamples is one value of every wire struct, covering each select arm.
func wsSamples() []wsSample {
	vs := []wsSample{
		{"Credential/basic", &Credential{CredentialType: CredentialBasic, Identity: []byte("bob")}},
		{"Credential/x509", &wsLeaf(LeafNodeSourceKeyPackage).Credential},
		{"Capabilities", wsPtr(wsCapabilities())},
		{"LeafNode/key_package", wsLeaf(LeafNodeSourceKeyPackage)},
		{"LeafNode/update", wsLeaf(LeafNodeSourceUpdate)},
		{"LeafNode/commit", wsLeaf(LeafNodeSourceCommit)},
		{"KeyPackage", wsKeyPackage()},
		{"ParentNode", wsTree()[3].Parent},
		{"RatchetTree", wsPtr(wsTree())},
		{"UpdatePath", wsUpdatePath()},
		{"Commit/full", wsCommit()},
		{"Commit/partial", &Commit{Proposals: []ProposalOrRef{{Type: ProposalOrRefReference, Reference: []byte("r")}}}},
		{"GroupSecrets/path", &GroupSecrets{JoinerSecret: []byte("joiner"), PathSecret: &PathSecret{[]byte("path")}, PSKs: []PreSharedKeyID{wsPSKID(PSKExternal), wsPSKID(PSKResumption)}}},
		{"GroupSecrets/nopath", &GroupSecrets{JoinerSecret: []byte("joiner")}},
		{"Welcome", wsWelcome()},
		{"GroupInfo", wsGroupInfo()},
		{"SenderData", &SenderData{LeafIndex: 3, Generation: 1 << 20, ReuseGuard: [4]byte{1, 2, 3, 4}}},
		{"PrivateMessage", wsPrivateMessage()},
		{"AuthenticatedContent", &AuthenticatedContent{WireFormat: WireFormatPrivateMessage, Content: wsContent(ContentTypeCommit, SenderTypeMember), Auth: wsAuth(ContentTypeCommit)}},
		{"MLSMessage/private", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: wsPrivateMessage()}},
		{"MLSMessage/welcome", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatWelcome, Welcome: wsWelcome()}},
		{"MLSMessage/group_info", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatGroupInfo, GroupInfo: wsGroupInfo()}},
		{"MLSMessage/key_package", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatKeyPackage, KeyPackage: wsKeyPackage()}},
	}
	for i, p := range wsProposals() {
		vs = append(vs, wsSample{"Proposal/" + itoa(i+1), p})
	}
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
		for _, st := range []SenderType{SenderTypeMember, SenderTypeExternal, SenderTypeNewMemberProposal, SenderTypeNewMemberCommit} {
			vs = append(vs, wsSample{"MLSMessage/public/" + itoa(int(ct)) + "/" + itoa(int(st)),
				&MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: wsPublicMessage(ct, st)}})
		}
	}
	return vs
}

func wsPtr[T any](v T) *T { return &v }

func wsMarshal(t testing.TB, v wire.Marshaler) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// wsNew returns a fresh zero value of v's type.
func wsNew(v wsValue) wsValue {
	return reflect.New(reflect.TypeOf(v).Elem()).Interface().(wsValue)
}

func TestStructRoundTrip(t *testing.T) {
	for _, tc := range wsSamples() {
		t.Run(tc.name, func(t *testing.T) {
			enc := wsMarshal(t, tc.v)
			got := wsNew(tc.v)
			if err := wire.Unmarshal(enc, got); err != nil {
				t.Fatalf("decode: %v\n%x", err, enc)
			}
			if !reflect.DeepEqual(got, tc.v) {
				t.Errorf("decoded value differs\n got  %+v\n want %+v", got, tc.v)
			}
			if re := wsMarshal(t, got); !bytes.Equal(re, enc) {
				t.Errorf("re-encoding differs\n got  %x\n want %x", re, enc)
			}
		})
	}
}

func TestStructPrivateMessageContentRoundTrip(t *testing.T) {
	for _, ct := range []ContentType{ContentTypeApplication, ContentTypeProposal, ContentTypeCommit} {
		for _, pad := range []int{0, 1, 100} {
			want := wsPrivateContent(ct, pad)
			enc := wsMarshal(t, want)
			got, err := UnmarshalPrivateMessageContent(enc, ct)
			if err != nil {
				t.Fatalf("content type %d, padding %d: %v", ct, pad, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("content type %d, padding %d: decoded value differs\n got  %+v\n want %+v", ct, pad, got, want)
			}
		}
	}
}

// TestStructKnownEncodings pins layouts byte by byte, independently of the
// round trip, for structs whose select arms the vectors do not reach.
func TestStructKnownEncodings(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    wire.Marshaler
		hex  string
	}{
		{"Remove", &Proposal{ProposalType: ProposalRemove, Remove: &Remove{Removed: 5}}, "0003" + "00000005"},
		{"Sender/member", &Sender{SenderType: SenderTypeMember, LeafIndex: 0x01020304}, "01" + "01020304"},
		{"Sender/external", &Sender{SenderType: SenderTypeExternal, SenderIndex: 2}, "02" + "00000002"},
		{"Sender/new_member_commit", &Sender{SenderType: SenderTypeNewMemberCommit}, "04"},
		{"SenderData", &SenderData{LeafIndex: 1, Generation: 2, ReuseGuard: [4]byte{0xaa, 0xbb, 0xcc, 0xdd}}, "00000001" + "00000002" + "aabbccdd"},
		{"Credential/x509", &Credential{CredentialType: CredentialX509, Certificates: []Certificate{{[]byte{1}}, {[]byte{2, 3}}}}, "0002" + "05" + "0101" + "020203"},
		{"Commit/empty", &Commit{}, "00" + "00"},
		{"ProposalOrRef/ref", &ProposalOrRef{Type: ProposalOrRefReference, Reference: []byte{9}}, "02" + "0109"},
		{"RatchetTree/trimmed", RatchetTree{{NodeType: NodeTypeLeaf, Leaf: &LeafNode{LeafNodeSource: LeafNodeSourceUpdate, Credential: Credential{CredentialType: CredentialBasic}}}, nil, nil},
			"0f" + "01" + "01" + "00" + "00" + "0001" + "00" + "0000000000" + "02" + "00" + "00"},
		{"ParentNode", &ParentNode{EncryptionKey: []byte{1}, UnmergedLeaves: []LeafIndex{1, 3}}, "0101" + "00" + "08" + "00000001" + "00000003"},
		{"PrivateMessageContent/padded", &PrivateMessageContent{ContentType: ContentTypeApplication, ApplicationData: []byte{7}, Auth: FramedContentAuthData{Signature: []byte{8}}, Padding: 3}, "0107" + "0108" + "000000"},
	} {
		got, err := wire.Marshal(tc.v)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if h := hex.EncodeToString(got); h != tc.hex {
			t.Errorf("%s: got %s, want %s", tc.name, h, tc.hex)
		}
	}
}

// TestStructTBS checks that each to-be-signed encoding is the struct's
// encoding minus its signature, plus the group context a leaf signs.
func TestStructTBS(t *testing.T) {
	tbs := func(f func(*wire.Writer)) []byte {
		w := wire.NewWriter(nil)
		f(w)
		b, err := w.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withoutSig := func(v wire.Marshaler, sig []byte) []byte {
		enc := wsMarshal(t, v)
		tail := wsMarshal(t, &ExternalInit{KEMOutput: sig}) // opaque<V> of the signature
		if !bytes.HasSuffix(enc, tail) {
			t.Fatalf("%T does not end in its signature", v)
		}
		return enc[:len(enc)-len(tail)]
	}

	kp := wsKeyPackage()
	if got, want := tbs(kp.marshalTBS), withoutSig(kp, kp.Signature); !bytes.Equal(got, want) {
		t.Errorf("KeyPackageTBS\n got  %x\n want %x", got, want)
	}
	gi := wsGroupInfo()
	if got, want := tbs(gi.marshalTBS), withoutSig(gi, gi.Signature); !bytes.Equal(got, want) {
		t.Errorf("GroupInfoTBS\n got  %x\n want %x", got, want)
	}
	groupID := []byte("gid")
	for _, src := range []LeafNodeSource{LeafNodeSourceKeyPackage, LeafNodeSourceUpdate, LeafNodeSourceCommit} {
		n := wsLeaf(src)
		got := tbs(func(w *wire.Writer) { n.marshalTBS(w, groupID, 0x0a0b0c0d) })
		want := withoutSig(n, n.Signature)
		if src != LeafNodeSourceKeyPackage {
			want = append(want, 3, 'g', 'i', 'd', 0x0a, 0x0b, 0x0c, 0x0d)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("LeafNodeTBS for source %d\n got  %x\n want %x", src, got, want)
		}
	}
}

// TestStructTruncated requires every strict prefix of a valid encoding to be
// rejected, for every sample value and every field of a real vector case.
func TestStructTruncated(t *testing.T) {
	expectPrefixesFail := func(name string, enc []byte, decode func([]byte) error) {
		for n := 0; n < len(enc); n++ {
			if err := decode(enc[:n]); err == nil {
				t.Errorf("%s: prefix of %d/%d bytes decoded", name, n, len(enc))
				return
			}
		}
	}
	for _, tc := range wsSamples() {
		expectPrefixesFail(tc.name, wsMarshal(t, tc.v), func(b []byte) error { return wire.Unmarshal(b, wsNew(tc.v)) })
	}
	// Without padding: a prefix that only shortens the padding is valid.
	for ct := ContentTypeApplication; ct <= ContentTypeCommit; ct++ {
		expectPrefixesFail("PrivateMessageContent/"+itoa(int(ct)), wsMarshal(t, wsPrivateContent(ct, 0)), func(b []byte) error {
			_, err := UnmarshalPrivateMessageContent(b, ct)
			return err
		})
	}
	for name, enc := range readMessagesVectorCase(t, 0) {
		expectPrefixesFail("messages.json "+name, enc, func(b []byte) error { return wire.Unmarshal(b, messagesFields[name].decode()) })
	}
}

func TestStructTrailingBytes(t *testing.T) {
	for _, tc := range wsSamples() {
		enc := append(wsMarshal(t, tc.v), 0)
		if err := wire.Unmarshal(enc, wsNew(tc.v)); !errors.Is(err, wire.ErrTrailing) {
			t.Errorf("%s with a trailing byte: got %v, want ErrTrailing", tc.name, err)
		}
	}
}

func TestStructNonzeroPadding(t *testing.T) {
	for ct := ContentTypeApplication; ct <= ContentTypeCommit; ct++ {
		enc := wsMarshal(t, wsPrivateContent(ct, 16))
		for _, i := range []int{len(enc) - 16, len(enc) - 8, len(enc) - 1} {
			bad := bytes.Clone(enc)
			bad[i] = 0x80
			if _, err := UnmarshalPrivateMessageContent(bad, ct); !errors.Is(err, errNonzeroPadding) {
				t.Errorf("content type %d, nonzero padding byte at %d: got %v", ct, i, err)
			}
		}
	}
}

// build encodes the fields fs writes, for hand-made invalid inputs.
func wsBuild(fs func(w *wire.Writer)) []byte {
	w := wire.NewWriter(nil)
	fs(w)
	b, err := w.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

func TestStructInvalidValues(t *testing.T) {
	leafBytes := wsMarshal(t, wsLeaf(LeafNodeSourceUpdate))
	msg := func(version, wf uint16, body []byte) []byte {
		return wsBuild(func(w *wire.Writer) { w.U16(version); w.U16(wf); w.Raw(body) })
	}
	welcome := wsMarshal(t, wsWelcome())
	credential := func(ct uint16) []byte { return wsBuild(func(w *wire.Writer) { w.U16(ct); w.Opaque([]byte("id")) }) }
	proposal := func(pt uint16) []byte { return wsBuild(func(w *wire.Writer) { w.U16(pt); w.U32(1) }) }
	sender := func(st uint8) []byte { return wsBuild(func(w *wire.Writer) { w.U8(st); w.U32(1) }) }
	content := func(ct uint8) []byte {
		return wsBuild(func(w *wire.Writer) {
			w.Opaque([]byte("g"))
			w.U64(1)
			w.U8(uint8(SenderTypeMember))
			w.U32(0)
			w.Opaque(nil)
			w.U8(ct)
			w.Opaque([]byte("data"))
		})
	}
	private := func(ct uint8) []byte {
		return wsBuild(func(w *wire.Writer) {
			w.Opaque([]byte("g"))
			w.U64(1)
			w.U8(ct)
			w.Opaque(nil)
			w.Opaque([]byte("sd"))
			w.Opaque([]byte("ct"))
		})
	}
	leafWithSource := func(src uint8) []byte {
		l := wsLeaf(LeafNodeSourceUpdate)
		return wsBuild(func(w *wire.Writer) {
			w.Opaque(l.EncryptionKey)
			w.Opaque(l.SignatureKey)
			l.Credential.MarshalMLS(w)
			l.Capabilities.MarshalMLS(w)
			w.U8(src)
			l.Extensions.MarshalMLS(w)
			w.Opaque(l.Signature)
		})
	}
	tree := func(nodes ...[]byte) []byte {
		return wsBuild(func(w *wire.Writer) {
			w.Vector(func(w *wire.Writer) {
				for _, n := range nodes {
					w.Raw(n)
				}
			})
		})
	}
	blank := []byte{0}
	leafNode := append([]byte{1, byte(NodeTypeLeaf)}, leafBytes...)
	parentNode := []byte{1, byte(NodeTypeParent), 1, 'k', 0, 0}

	for _, tc := range []struct {
		name string
		v    wsValue
		data []byte
		want string // substring of the error
	}{
		{"MLSMessage version 0", new(MLSMessage), msg(0, 3, welcome), "MLSMessage.version 0"},
		{"MLSMessage version 2", new(MLSMessage), msg(2, 3, welcome), "MLSMessage.version 2"},
		{"MLSMessage wire_format 0", new(MLSMessage), msg(1, 0, welcome), "MLSMessage.wire_format 0"},
		{"MLSMessage wire_format 6", new(MLSMessage), msg(1, 6, welcome), "MLSMessage.wire_format 6"},
		{"MLSMessage wire_format private use", new(MLSMessage), msg(1, 0xf000, welcome), "MLSMessage.wire_format 61440"},
		{"KeyPackage version 2", new(KeyPackage), append([]byte{0, 2}, wsMarshal(t, wsKeyPackage())[2:]...), "KeyPackage.version 2"},
		{"ReInit version 0", new(ReInit), wsBuild(func(w *wire.Writer) { w.Opaque([]byte("g")); w.U16(0); w.U16(1); w.Vector(func(*wire.Writer) {}) }), "ReInit.version 0"},
		{"Credential type 0", new(Credential), credential(0), "Credential.credential_type 0"},
		{"Credential type 3", new(Credential), credential(3), "Credential.credential_type 3"},
		{"Credential type GREASE", new(Credential), credential(0x0a0a), "Credential.credential_type 2570"},
		{"Proposal type 0", new(Proposal), proposal(0), "Proposal.proposal_type 0"},
		{"Proposal type 8", new(Proposal), proposal(8), "Proposal.proposal_type 8"},
		{"Proposal type GREASE", new(Proposal), proposal(0x0a0a), "Proposal.proposal_type 2570"},
		{"ProposalOrRef type 0", new(ProposalOrRef), []byte{0, 1, 9}, "ProposalOrRef.type 0"},
		{"ProposalOrRef type 3", new(ProposalOrRef), []byte{3, 1, 9}, "ProposalOrRef.type 3"},
		{"Sender type 0", new(Sender), sender(0), "Sender.sender_type 0"},
		{"Sender type 5", new(Sender), sender(5), "Sender.sender_type 5"},
		{"FramedContent content_type 0", new(FramedContent), content(0), "FramedContent.content_type 0"},
		{"FramedContent content_type 4", new(FramedContent), content(4), "FramedContent.content_type 4"},
		{"PrivateMessage content_type 0", new(PrivateMessage), private(0), "PrivateMessage.content_type 0"},
		{"PrivateMessage content_type 4", new(PrivateMessage), private(4), "PrivateMessage.content_type 4"},
		{"LeafNode source 0", new(LeafNode), leafWithSource(0), "LeafNode.leaf_node_source 0"},
		{"LeafNode source 4", new(LeafNode), leafWithSource(4), "LeafNode.leaf_node_source 4"},
		{"Node type 0", new(Node), []byte{0, 1, 'k', 0, 0}, "Node.node_type 0"},
		{"Node type 3", new(Node), []byte{3, 1, 'k', 0, 0}, "Node.node_type 3"},
		{"AuthenticatedContent wire_format welcome", new(AuthenticatedContent), append([]byte{0, 3}, content(1)...), "AuthenticatedContent.wire_format 3"},
		{"PSK type 0", new(PreSharedKey), []byte{0, 0}, "PSK type 0"},
		{"RatchetTree empty", new(RatchetTree), tree(), "ratchet_tree is empty"},
		{"RatchetTree trailing blank", new(RatchetTree), tree(leafNode, blank), "ends in a blank node"},
		{"RatchetTree only blank", new(RatchetTree), tree(blank), "ends in a blank node"},
		{"RatchetTree parent at leaf position", new(RatchetTree), tree(parentNode), "node 0 has node_type 2"},
		{"RatchetTree leaf at parent position", new(RatchetTree), tree(leafNode, leafNode, leafNode), "node 1 has node_type 1"},
		{"Commit path presence 2", new(Commit), []byte{0, 2}, wire.ErrOptional.Error()},
		{"GroupSecrets path presence 2", new(GroupSecrets), []byte{1, 'j', 2, 0}, wire.ErrOptional.Error()},
		{"RatchetTree node presence 2", new(RatchetTree), tree([]byte{2}, leafNode), wire.ErrOptional.Error()},
		{"Capabilities odd-length vector", new(Capabilities), []byte{1, 0, 0, 0, 0, 0}, wire.ErrTruncated.Error()},
		{"vector longer than input", new(Welcome), []byte{0, 1, 0xbf, 0xff, 0xff, 0xff}, "exceeds remaining input"},
	} {
		err := wire.Unmarshal(tc.data, tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one containing %q", tc.name, err, tc.want)
		}
	}

	// Sanity check of the helpers: with valid enum values they decode.
	for _, data := range [][]byte{credential(1), proposal(3), sender(1), tree(leafNode, parentNode, leafNode), leafWithSource(2)} {
		var ok bool
		for _, v := range []wsValue{new(Credential), new(Proposal), new(Sender), new(RatchetTree), new(LeafNode)} {
			if wire.Unmarshal(data, v) == nil {
				ok = true
			}
		}
		if !ok {
			t.Errorf("helper encoding %x with valid values does not decode", data)
		}
	}
	if _, err := UnmarshalPrivateMessageContent([]byte{1, 'a', 0}, 0); err == nil || !strings.Contains(err.Error(), "content_type 0") {
		t.Errorf("PrivateMessageContent with content type 0: got %v", err)
	}
}

// TestStructMarshalMismatch encodes structs whose tag and body disagree: they
// must encode the empty body or fail, never panic.
func TestStructMarshalMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    wire.Marshaler
		ok   bool
	}{
		{"MLSMessage welcome nil", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatWelcome}, true},
		{"MLSMessage private nil", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPrivateMessage}, false}, // zero content type
		{"MLSMessage public nil", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatPublicMessage}, false},
		{"MLSMessage key_package nil", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatKeyPackage}, false},
		{"MLSMessage group_info nil", &MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatGroupInfo}, true},
		{"MLSMessage version 0", &MLSMessage{WireFormat: WireFormatWelcome, Welcome: wsWelcome()}, false},
		{"MLSMessage wire_format 9", &MLSMessage{Version: ProtocolMLS10, WireFormat: 9}, false},
		{"Proposal remove nil", &Proposal{ProposalType: ProposalRemove}, true},
		{"Proposal add nil", &Proposal{ProposalType: ProposalAdd}, false},
		{"Proposal psk nil", &Proposal{ProposalType: ProposalPSK}, false},
		{"Proposal gce nil", &Proposal{ProposalType: ProposalGroupContextExtensions}, true},
		{"Proposal type 0", &Proposal{}, false},
		{"ProposalOrRef nil proposal", &ProposalOrRef{Type: ProposalOrRefProposal}, false},
		{"Node leaf nil", &Node{NodeType: NodeTypeLeaf}, false},
		{"Node parent nil", &Node{NodeType: NodeTypeParent}, true},
		{"RatchetTree all blank", RatchetTree{nil, nil, nil}, false},
		{"RatchetTree wrong position", RatchetTree{{NodeType: NodeTypeParent, Parent: &ParentNode{}}}, false},
		{"FramedContent commit nil", &FramedContent{Sender: Sender{SenderType: SenderTypeMember}, ContentType: ContentTypeCommit}, true},
		{"FramedContent type 0", &FramedContent{Sender: Sender{SenderType: SenderTypeMember}}, false},
		{"Sender type 0", &Sender{}, false},
		{"Credential type 0", &Credential{}, false},
		{"LeafNode source 0", &LeafNode{Credential: Credential{CredentialType: CredentialBasic}}, false},
		{"KeyPackage version 0", &KeyPackage{}, false},
		{"AuthenticatedContent wire_format 0", &AuthenticatedContent{Content: wsContent(ContentTypeApplication, SenderTypeMember)}, false},
		{"PrivateMessageContent negative padding", &PrivateMessageContent{ContentType: ContentTypeApplication, Padding: -1}, false},
		{"PrivateMessageContent huge padding", &PrivateMessageContent{ContentType: ContentTypeApplication, Padding: 1 << 62}, false},
	} {
		_, err := wire.Marshal(tc.v)
		if (err == nil) != tc.ok {
			t.Errorf("%s: got error %v, want success %v", tc.name, err, tc.ok)
		}
	}
}

// TestStructDecodeAllocation checks that decoding cannot be made to allocate
// much more than the input: hostile length headers cost nothing, and the
// densest valid input (a tree of blank nodes) stays within a constant factor.
func TestStructDecodeAllocation(t *testing.T) {
	allocs := func(data []byte, v wsValue) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 10 {
			_ = wire.Unmarshal(data, wsNew(v))
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 10
	}
	hostile := []byte{0, 1, 0, 3, 0, 1, 0xbf, 0xff, 0xff, 0xff, 1, 2, 3}
	if n := allocs(hostile, new(MLSMessage)); n > 4096 {
		t.Errorf("hostile Welcome header: %d bytes allocated", n)
	}

	leaf := append([]byte{1, byte(NodeTypeLeaf)}, wsMarshal(t, wsLeaf(LeafNodeSourceUpdate))...)
	body := append(bytes.Repeat([]byte{0}, 1<<16), leaf...)
	tree := wsBuild(func(w *wire.Writer) { w.Opaque(body) })
	var rt RatchetTree
	if err := wire.Unmarshal(tree, &rt); err != nil || len(rt) != 1<<16+1 {
		t.Fatalf("blank tree: %v, %d nodes", err, len(rt))
	}
	if n := allocs(tree, new(RatchetTree)); n > 64*uint64(len(tree)) {
		t.Errorf("decoding %d bytes of blank tree allocated %d bytes", len(tree), n)
	}
}
