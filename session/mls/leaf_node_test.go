package mls

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls/wire"
)

// lntLeaf makes a signed leaf of the given source for suite s, as a member
// at leaf 3 of group "group" would.
func lntLeaf(t *testing.T, s *CipherSuite, src LeafNodeSource) (*LeafNode, []byte) {
	t.Helper()
	sigPriv, sigPub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	_, encPub, err := s.GenerateHPKEKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	n := &LeafNode{
		EncryptionKey:  encPub,
		SignatureKey:   sigPub,
		Credential:     Credential{CredentialType: CredentialBasic, Identity: []byte("bob")},
		Capabilities:   withGREASE(DefaultCapabilities()),
		LeafNodeSource: src,
	}
	switch src {
	case LeafNodeSourceKeyPackage:
		n.Lifetime = Lifetime{NotBefore: uint64(kptNow.Unix()) - 60, NotAfter: uint64(kptNow.Unix()) + 60}
	case LeafNodeSourceCommit:
		n.ParentHash = s.Digest([]byte("parent"))
	}
	if err := n.Sign(s, sigPriv, []byte("group"), 3); err != nil {
		t.Fatal(err)
	}
	return n, sigPriv
}

func lntCheck(s *CipherSuite, src LeafNodeSource) *LeafNodeCheck {
	return &LeafNodeCheck{Suite: s, GroupID: []byte("group"), Leaf: 3, Source: src, Now: kptNow}
}

func TestLeafNodeSignature(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			for _, src := range []LeafNodeSource{LeafNodeSourceKeyPackage, LeafNodeSourceUpdate, LeafNodeSourceCommit} {
				n, _ := lntLeaf(t, s, src)
				if err := n.VerifySignature(s, []byte("group"), 3); err != nil {
					t.Fatalf("source %d: %v", src, err)
				}
				if err := n.Validate(lntCheck(s, src)); err != nil {
					t.Fatalf("source %d: valid leaf rejected: %v", src, err)
				}
				// Leaves made in a group are bound to it and to their
				// position; KeyPackage leaves are made before either exists.
				bound := src != LeafNodeSourceKeyPackage
				for _, ctx := range []struct {
					group []byte
					leaf  LeafIndex
				}{{[]byte("other"), 3}, {[]byte("group"), 4}} {
					err := n.VerifySignature(s, ctx.group, ctx.leaf)
					if bound && !errors.Is(err, ErrBadSignature) {
						t.Errorf("source %d: signature valid in group %q leaf %d (%v)", src, ctx.group, ctx.leaf, err)
					}
					if !bound && err != nil {
						t.Errorf("source %d: signature depends on the group: %v", src, err)
					}
				}
				// Survives the wire.
				enc, err := wire.Marshal(n)
				if err != nil {
					t.Fatal(err)
				}
				var dec LeafNode
				if err := wire.Unmarshal(enc, &dec); err != nil {
					t.Fatal(err)
				}
				if err := dec.Validate(lntCheck(s, src)); err != nil {
					t.Errorf("source %d: decoded leaf rejected: %v", src, err)
				}
				n.Signature[0] ^= 1
				if err := n.VerifySignature(s, []byte("group"), 3); !errors.Is(err, ErrBadSignature) {
					t.Errorf("source %d: tampered signature gave %v", src, err)
				}
			}
		})
	}
}

func TestLeafNodeValidateRejects(t *testing.T) {
	s, _ := Suite(MLS256DHKEMP384AES256GCMSHA384P384)
	for _, tc := range []struct {
		name   string
		src    LeafNodeSource
		mutate func(n *LeafNode) // applied before re-signing
		after  func(n *LeafNode) // applied after signing
		check  func(c *LeafNodeCheck)
		want   string
	}{
		{name: "source mismatch", src: LeafNodeSourceUpdate, check: func(c *LeafNodeCheck) { c.Source = LeafNodeSourceCommit }, want: "source"},
		{name: "suite not in capabilities", src: LeafNodeSourceCommit, mutate: func(n *LeafNode) {
			n.Capabilities.CipherSuites = []CipherSuiteID{MLS128DHKEMX25519AES128GCMSHA256Ed25519}
		}, want: "cipher suite"},
		{name: "version not in capabilities", src: LeafNodeSourceUpdate, mutate: func(n *LeafNode) {
			n.Capabilities.Versions = []ProtocolVersion{0x0a0a}
		}, want: "MLS 1.0"},
		{name: "leaf extension not in capabilities", src: LeafNodeSourceUpdate, mutate: func(n *LeafNode) {
			n.Extensions = Extensions{{Type: 0xbeef, Data: []byte("not listed")}}
		}, want: "missing from its capabilities"},
		{name: "credential type not in capabilities", src: LeafNodeSourceCommit, mutate: func(n *LeafNode) {
			n.Capabilities.Credentials = []CredentialType{CredentialX509}
		}, want: "credential type 1"},
		{name: "required extension", src: LeafNodeSourceCommit, check: func(c *LeafNodeCheck) {
			c.Required = &RequiredCapabilities{ExtensionTypes: []ExtensionType{0xff01}}
		}, want: "required capabilities"},
		{name: "required proposal", src: LeafNodeSourceCommit, check: func(c *LeafNodeCheck) {
			c.Required = &RequiredCapabilities{ProposalTypes: []ProposalType{0xff02}}
		}, want: "required capabilities"},
		{name: "required credential", src: LeafNodeSourceKeyPackage, mutate: func(n *LeafNode) {
			n.Capabilities.Credentials = []CredentialType{CredentialBasic}
		}, check: func(c *LeafNodeCheck) {
			c.Required = &RequiredCapabilities{CredentialTypes: []CredentialType{CredentialX509}}
		}, want: "required capabilities"},
		{name: "group extension", src: LeafNodeSourceUpdate, check: func(c *LeafNodeCheck) {
			c.GroupExtensions = Extensions{{Type: ExtExternalSenders}, {Type: 0xff03}}
		}, want: "group extension 0xff03"},
		{name: "member credential type", src: LeafNodeSourceUpdate, mutate: func(n *LeafNode) {
			n.Capabilities.Credentials = []CredentialType{CredentialBasic}
		}, check: func(c *LeafNodeCheck) {
			c.MemberCredentialTypes = []CredentialType{CredentialBasic, CredentialX509}
		}, want: "credential type 2 used in the group"},
		{name: "expired", src: LeafNodeSourceKeyPackage, check: func(c *LeafNodeCheck) { c.Now = c.Now.Add(61e9) }, want: "expired"},
		{name: "inverted lifetime", src: LeafNodeSourceKeyPackage, mutate: func(n *LeafNode) {
			n.Lifetime.NotBefore, n.Lifetime.NotAfter = n.Lifetime.NotAfter, n.Lifetime.NotBefore
		}, want: "ends before"},
		{name: "malformed encryption key", src: LeafNodeSourceCommit, mutate: func(n *LeafNode) {
			n.EncryptionKey = append(n.EncryptionKey, 0)
		}, want: "encryption key"},
		{name: "encryption key not on curve", src: LeafNodeSourceCommit, mutate: func(n *LeafNode) {
			n.EncryptionKey[len(n.EncryptionKey)-1] ^= 1
		}, want: "encryption key"},
		{name: "malformed signature key", src: LeafNodeSourceUpdate, after: func(n *LeafNode) {
			n.SignatureKey = n.SignatureKey[:10]
		}, want: "signature key"},
		{name: "credential policy", src: LeafNodeSourceUpdate, check: func(c *LeafNodeCheck) {
			c.Credentials = X509Credentials{}
		}, want: "only x509"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sigPriv := lntLeaf(t, s, tc.src)
			if tc.mutate != nil {
				tc.mutate(n)
				if err := n.Sign(s, sigPriv, []byte("group"), 3); err != nil {
					t.Fatal(err)
				}
			}
			if tc.after != nil {
				tc.after(n)
			}
			c := lntCheck(s, tc.src)
			if tc.check != nil {
				tc.check(c)
			}
			kptExpectErr(t, n.Validate(c), tc.want)
		})
	}
}

func TestLeafNodeValidateAccepts(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519)
	n, _ := lntLeaf(t, s, LeafNodeSourceCommit)

	// Default extension and proposal types need not be listed (section
	// 7.2), credential types always must be.
	c := lntCheck(s, LeafNodeSourceCommit)
	c.Required = &RequiredCapabilities{
		ExtensionTypes:  []ExtensionType{ExtRatchetTree, ExtExternalSenders},
		ProposalTypes:   []ProposalType{ProposalAdd, ProposalGroupContextExtensions},
		CredentialTypes: []CredentialType{CredentialBasic},
	}
	c.GroupExtensions = Extensions{{Type: ExtRequiredCapabilities}, {Type: ExtExternalSenders}}
	c.MemberCredentialTypes = []CredentialType{CredentialBasic, CredentialX509}
	if err := n.Validate(c); err != nil {
		t.Fatal(err)
	}
	// Source zero accepts any source, for whole-tree validation.
	c.Source = 0
	if err := n.Validate(c); err != nil {
		t.Fatal(err)
	}
	// A KeyPackage leaf's lifetime is checked against Now, and skipped when
	// Now is zero.
	kpLeaf, _ := lntLeaf(t, s, LeafNodeSourceKeyPackage)
	c = lntCheck(s, LeafNodeSourceKeyPackage)
	if err := kpLeaf.Validate(c); err != nil {
		t.Error(err)
	}
	for _, now := range []time.Time{kptNow.AddDate(10, 0, 0), kptNow.AddDate(-10, 0, 0), time.Unix(-1, 0)} {
		c.Now = now
		if err := kpLeaf.Validate(c); err == nil {
			t.Errorf("leaf valid at %v", now)
		}
	}
	c.Now = time.Time{}
	if err := kpLeaf.Validate(c); err != nil {
		t.Errorf("zero Now: %v", err)
	}
}

func TestLeafNodeValidateHostile(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	var nilLeaf *LeafNode
	if err := nilLeaf.Validate(lntCheck(s, 0)); err == nil {
		t.Error("nil leaf validated")
	}
	n, _ := lntLeaf(t, s, LeafNodeSourceUpdate)
	if err := n.Validate(nil); err == nil {
		t.Error("nil check accepted")
	}
	if err := n.Validate(&LeafNodeCheck{}); err == nil {
		t.Error("check without suite accepted")
	}
	for _, suite := range Suites() {
		empty := &LeafNode{LeafNodeSource: LeafNodeSourceUpdate, Capabilities: DefaultCapabilities(), Credential: Credential{CredentialType: CredentialBasic}}
		if err := empty.Validate(lntCheck(suite, 0)); err == nil {
			t.Errorf("%s: empty leaf validated", suite)
		}
		if checkHPKEPublicKey(suite, nil) == nil || checkSignaturePublicKey(suite, nil) == nil {
			t.Errorf("%s: empty key accepted", suite)
		}
	}
}

func TestLeafNodeCapabilities(t *testing.T) {
	var grease []uint16
	for v := 0; v <= 0xffff; v++ {
		if isGREASE(uint16(v)) {
			grease = append(grease, uint16(v))
		}
	}
	want := []uint16{0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a, 0x8a8a, 0x9a9a, 0xaaaa, 0xbaba, 0xcaca, 0xdada, 0xeaea}
	if !slices.Equal(grease, want) {
		t.Errorf("GREASE values %x, want %x", grease, want)
	}
	for range 100 {
		if v := randomGREASE(); !isGREASE(v) {
			t.Fatalf("randomGREASE gave %#04x", v)
		}
	}

	def := DefaultCapabilities()
	for _, s := range Suites() {
		if !slices.Contains(def.CipherSuites, s.ID) {
			t.Errorf("DefaultCapabilities lacks %s", s)
		}
	}
	for _, e := range def.Extensions {
		if isDefaultExtension(e) || isGREASE(uint16(e)) {
			t.Errorf("DefaultCapabilities lists extension %#04x", e)
		}
	}
	for _, p := range def.Proposals {
		if isDefaultProposal(p) || isGREASE(uint16(p)) {
			t.Errorf("DefaultCapabilities lists proposal %#04x", p)
		}
	}
	if !slices.Equal(def.Versions, []ProtocolVersion{ProtocolMLS10}) || !slices.Equal(def.Credentials, []CredentialType{CredentialBasic, CredentialX509}) {
		t.Errorf("DefaultCapabilities %+v", def)
	}
	if !isDefaultExtension(ExtExternalSenders) || isDefaultExtension(0) || isDefaultExtension(6) {
		t.Error("isDefaultExtension")
	}
	if !isDefaultProposal(ProposalGroupContextExtensions) || isDefaultProposal(0) || isDefaultProposal(8) {
		t.Error("isDefaultProposal")
	}
	greased := withGREASE(def)
	if !reflect.DeepEqual(def, DefaultCapabilities()) || len(greased.CipherSuites) != len(def.CipherSuites)+1 {
		t.Error("withGREASE must add to a copy")
	}

	rc := &RequiredCapabilities{
		ExtensionTypes:  []ExtensionType{ExtExternalSenders, 0xff00},
		ProposalTypes:   []ProposalType{0xff01},
		CredentialTypes: []CredentialType{CredentialX509},
	}
	enc, err := wire.Marshal(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, []byte{4, 0, 5, 0xff, 0, 2, 0xff, 1, 2, 0, 2}) {
		t.Errorf("RequiredCapabilities encodes as %x", enc)
	}
	got, err := ParseRequiredCapabilities(Extensions{{Type: ExtApplicationID}, {Type: ExtRequiredCapabilities, Data: enc}})
	if err != nil || !reflect.DeepEqual(got, rc) {
		t.Errorf("ParseRequiredCapabilities = %+v, %v", got, err)
	}
	if got, err := ParseRequiredCapabilities(nil); got != nil || err != nil {
		t.Error("absent required_capabilities must parse as nil, nil")
	}
	if _, err := ParseRequiredCapabilities(Extensions{{Type: ExtRequiredCapabilities, Data: enc[:5]}}); err == nil {
		t.Error("truncated required_capabilities accepted")
	}

	caps := Capabilities{Extensions: []ExtensionType{0xff00}, Proposals: []ProposalType{0xff01}, Credentials: []CredentialType{CredentialX509}}
	if !caps.Supports(rc) || !caps.Supports(nil) || !caps.Supports(&RequiredCapabilities{}) {
		t.Error("Supports rejects what is listed")
	}
	for _, missing := range []*RequiredCapabilities{
		{ExtensionTypes: []ExtensionType{0xff02}},
		{ProposalTypes: []ProposalType{0xff02}},
		{CredentialTypes: []CredentialType{CredentialBasic}},
	} {
		if caps.Supports(missing) {
			t.Errorf("Supports accepts %+v", missing)
		}
	}
}
