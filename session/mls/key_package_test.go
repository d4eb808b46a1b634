package mls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls/wire"
)

// kptNow is a fixed clock, so lifetime tests do not depend on the wall clock.
var kptNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type kptMember struct {
	s                 *CipherSuite
	sigPriv, sigPub   []byte
	kp                *KeyPackage
	initPriv, encPriv []byte
}

func kptNewMember(t *testing.T, s *CipherSuite, opts KeyPackageOptions) *kptMember {
	t.Helper()
	sigPriv, sigPub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Now.IsZero() {
		opts.Now = kptNow
	}
	kp, initPriv, encPriv, err := NewKeyPackage(s, sigPriv, Credential{CredentialType: CredentialBasic, Identity: []byte("alice")}, opts)
	if err != nil {
		t.Fatalf("NewKeyPackage: %v", err)
	}
	return &kptMember{s, sigPriv, sigPub, kp, initPriv, encPriv}
}

// kptResign re-signs the leaf and the KeyPackage after a test altered them,
// so that the check under test, not the signature, is what fails.
func (m *kptMember) resign(t *testing.T) {
	t.Helper()
	if err := m.kp.LeafNode.Sign(m.s, m.sigPriv, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.kp.Sign(m.s, m.sigPriv); err != nil {
		t.Fatal(err)
	}
}

func kptExpectErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if !strings.HasPrefix(err.Error(), "mls: ") {
		t.Errorf("error %q lacks the mls: prefix", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want one containing %q", err, want)
	}
}

func TestKeyPackageRoundTrip(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			m := kptNewMember(t, s, KeyPackageOptions{})
			kp := m.kp
			if err := kp.Validate(s, kptNow, nil); err != nil {
				t.Fatalf("fresh KeyPackage does not validate: %v", err)
			}
			if pub, err := s.HPKEPublicKey(m.initPriv); err != nil || !bytes.Equal(pub, kp.InitKey) {
				t.Errorf("init private key does not match init_key (%v)", err)
			}
			if pub, err := s.HPKEPublicKey(m.encPriv); err != nil || !bytes.Equal(pub, kp.LeafNode.EncryptionKey) {
				t.Errorf("encryption private key does not match encryption_key (%v)", err)
			}
			if !bytes.Equal(kp.LeafNode.SignatureKey, m.sigPub) {
				t.Error("signature_key is not the signer's public key")
			}

			caps := kp.LeafNode.Capabilities
			if !slices.Contains(caps.CipherSuites, s.ID) || !slices.Contains(caps.Versions, ProtocolMLS10) {
				t.Errorf("capabilities %+v lack the suite or version", caps)
			}
			greased := 0
			for _, v := range caps.CipherSuites {
				if isGREASE(uint16(v)) {
					greased++
				}
			}
			if greased != 1 || !isGREASE(uint16(caps.Extensions[len(caps.Extensions)-1])) ||
				!isGREASE(uint16(caps.Proposals[len(caps.Proposals)-1])) || !isGREASE(uint16(caps.Credentials[len(caps.Credentials)-1])) {
				t.Errorf("capabilities %+v are not greased once per list", caps)
			}
			lt := kp.LeafNode.Lifetime
			if lt.NotBefore > uint64(kptNow.Unix()) || lt.NotAfter != uint64(kptNow.Add(DefaultKeyPackageLifetime).Unix()) {
				t.Errorf("lifetime %+v, want it to start by now and last %v", lt, DefaultKeyPackageLifetime)
			}

			// Through the wire, as a peer receives it.
			enc, err := wire.Marshal(&MLSMessage{Version: ProtocolMLS10, WireFormat: WireFormatKeyPackage, KeyPackage: kp})
			if err != nil {
				t.Fatal(err)
			}
			var msg MLSMessage
			if err := wire.Unmarshal(enc, &msg); err != nil {
				t.Fatal(err)
			}
			if err := msg.KeyPackage.Validate(s, kptNow.Add(30*24*time.Hour), BasicCredentials{}); err != nil {
				t.Fatalf("decoded KeyPackage does not validate: %v", err)
			}

			ref, err := kp.Ref(s)
			if err != nil {
				t.Fatal(err)
			}
			ref2, err := msg.KeyPackage.Ref(s)
			if err != nil {
				t.Fatal(err)
			}
			if len(ref) != s.Nh() || !bytes.Equal(ref, ref2) {
				t.Errorf("KeyPackageRef %x / %x, want equal, %d bytes", ref, ref2, s.Nh())
			}
			other := kptNewMember(t, s, KeyPackageOptions{})
			if ref3, _ := other.kp.Ref(s); bytes.Equal(ref, ref3) {
				t.Error("two KeyPackages share a reference")
			}
		})
	}
}

func TestKeyPackageRejects(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	other, _ := Suite(MLS128DHKEMP256AES128GCMSHA256P256)
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, m *kptMember)
		suite  *CipherSuite
		now    time.Time
		want   string
	}{
		{name: "tampered signature", mutate: func(t *testing.T, m *kptMember) { m.kp.Signature[0] ^= 1 }, want: "signature"},
		{name: "tampered content", mutate: func(t *testing.T, m *kptMember) {
			m.kp.Extensions = Extensions{{Type: 0x0a0a, Data: []byte("x")}}
		}, want: "signature"},
		{name: "tampered leaf", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.Signature[0] ^= 1
			if err := m.kp.Sign(m.s, m.sigPriv); err != nil {
				t.Fatal(err)
			}
		}, want: "leaf node"},
		{name: "init key equals encryption key", mutate: func(t *testing.T, m *kptMember) {
			m.kp.InitKey = bytes.Clone(m.kp.LeafNode.EncryptionKey)
			m.resign(t)
		}, want: "init key equals"},
		{name: "malformed init key", mutate: func(t *testing.T, m *kptMember) {
			m.kp.InitKey = m.kp.InitKey[1:]
			m.resign(t)
		}, want: "init key"},
		{name: "malformed encryption key", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.EncryptionKey = []byte{1, 2, 3}
			m.resign(t)
		}, want: "encryption key"},
		{name: "expired", now: kptNow.Add(DefaultKeyPackageLifetime + time.Second), want: "expired"},
		{name: "not yet valid", now: kptNow.Add(-2 * time.Hour), want: "not begun"},
		{name: "lifetime too long", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.Lifetime = Lifetime{NotBefore: 0, NotAfter: ^uint64(0)}
			m.resign(t)
		}, want: "exceeds the maximum"},
		{name: "wrong suite", suite: other, want: "cipher suite"},
		{name: "wrong version", mutate: func(t *testing.T, m *kptMember) { m.kp.Version = 2 }, want: "version"},
		{name: "leaf source update", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.LeafNodeSource = LeafNodeSourceUpdate
			m.resign(t)
		}, want: "source"},
		{name: "leaf extension not in capabilities", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.Extensions = Extensions{{Type: 0xff00, Data: []byte("?")}}
			m.resign(t)
		}, want: "missing from its capabilities"},
		{name: "duplicate leaf extension", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.Extensions = Extensions{{Type: ExtApplicationID}, {Type: ExtApplicationID}}
			m.resign(t)
		}, want: "twice"},
		{name: "duplicate KeyPackage extension", mutate: func(t *testing.T, m *kptMember) {
			m.kp.Extensions = Extensions{{Type: 0x0a0a}, {Type: 0x0a0a}}
			m.resign(t)
		}, want: "twice"},
		{name: "credential type not in capabilities", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.Capabilities.Credentials = []CredentialType{CredentialX509}
			m.resign(t)
		}, want: "credential type 1 is missing"},
		{name: "x509 under basic policy", mutate: func(t *testing.T, m *kptMember) {
			m.kp.LeafNode.Credential = Credential{CredentialType: CredentialX509, Certificates: []Certificate{{[]byte("junk")}}}
			m.resign(t)
		}, want: "only basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := kptNewMember(t, s, KeyPackageOptions{})
			if tc.mutate != nil {
				tc.mutate(t, m)
			}
			suite, now := tc.suite, tc.now
			if suite == nil {
				suite = s
			}
			if now.IsZero() {
				now = kptNow
			}
			kptExpectErr(t, m.kp.Validate(suite, now, nil), tc.want)
		})
	}
}

func TestKeyPackageTamperedSignatureIsErrBadSignature(t *testing.T) {
	for _, s := range Suites() {
		m := kptNewMember(t, s, KeyPackageOptions{})
		m.kp.Signature[len(m.kp.Signature)-1] ^= 0x80
		if err := m.kp.Validate(s, kptNow, nil); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: tampered signature gave %v, want ErrBadSignature", s, err)
		}
	}
}

func TestKeyPackageNewOptions(t *testing.T) {
	s, _ := Suite(MLS128MLKEM768X25519AES128GCMSHA256Ed25519)
	sigPriv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	basic := Credential{CredentialType: CredentialBasic, Identity: []byte("bob")}
	withoutSuite := DefaultCapabilities()
	withoutSuite.CipherSuites = slices.DeleteFunc(withoutSuite.CipherSuites, func(id CipherSuiteID) bool { return id == s.ID })
	x509Only := DefaultCapabilities()
	x509Only.Credentials = []CredentialType{CredentialX509}

	for _, tc := range []struct {
		name string
		opts KeyPackageOptions
		want string
	}{
		{"suite not in capabilities", KeyPackageOptions{Capabilities: &withoutSuite}, "cipher suite"},
		{"credential not in capabilities", KeyPackageOptions{Capabilities: &x509Only}, "credential type"},
		{"leaf extension not in capabilities", KeyPackageOptions{LeafExtensions: Extensions{{Type: 0xff00}}}, "missing from the capabilities"},
		{"KeyPackage extension not in capabilities", KeyPackageOptions{Extensions: Extensions{{Type: 0xff00}}}, "missing from the capabilities"},
		{"duplicate extension", KeyPackageOptions{LeafExtensions: Extensions{{Type: ExtApplicationID}, {Type: ExtApplicationID}}}, "twice"},
		{"negative lifetime", KeyPackageOptions{Lifetime: -time.Hour}, "lifetime"},
		{"lifetime over the maximum", KeyPackageOptions{Lifetime: MaxLeafNodeLifetime}, "lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kp, ip, ep, err := NewKeyPackage(s, sigPriv, basic, tc.opts)
			if kp != nil || ip != nil || ep != nil {
				t.Error("failed NewKeyPackage returned keys")
			}
			kptExpectErr(t, err, tc.want)
		})
	}

	if _, _, _, err := NewKeyPackage(s, []byte("short"), basic, KeyPackageOptions{}); err == nil {
		t.Error("malformed signature private key accepted")
	}
	if _, _, _, err := NewKeyPackage(nil, sigPriv, basic, KeyPackageOptions{}); err == nil {
		t.Error("nil suite accepted")
	}

	// Supported non-default extensions, and default ones, are fine.
	caps := DefaultCapabilities()
	caps.Extensions = append(caps.Extensions, 0xff00)
	snapshot := DefaultCapabilities()
	snapshot.Extensions = append(snapshot.Extensions, 0xff00)
	kp, _, _, err := NewKeyPackage(s, sigPriv, basic, KeyPackageOptions{
		Now: kptNow, Lifetime: time.Hour, Capabilities: &caps,
		Extensions:     Extensions{{Type: 0xff00, Data: []byte("kp")}},
		LeafExtensions: Extensions{{Type: 0xff00, Data: []byte("leaf")}, {Type: ExtApplicationID, Data: []byte("app")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Validate(s, kptNow.Add(30*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if err := kp.Validate(s, kptNow.Add(2*time.Hour), nil); err == nil {
		t.Error("one-hour KeyPackage valid two hours later")
	}
	if !reflect.DeepEqual(caps, snapshot) {
		t.Error("NewKeyPackage changed the caller's capabilities")
	}
}

// kptSelfSigned makes a throwaway self-signed certificate for pub.
func kptSelfSigned(t *testing.T, pub, priv any) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "current test"},
		NotBefore:    kptNow.Add(-time.Hour),
		NotAfter:     kptNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestKeyPackageX509(t *testing.T) {
	ed, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	p256, _ := Suite(MLS128DHKEMP256AES128GCMSHA256P256)

	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := ecKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	edCert := kptSelfSigned(t, edPub, edKey)
	ecCert := kptSelfSigned(t, &ecKey.PublicKey, ecKey)

	var verified int
	policy := X509Credentials{Verify: func(chain []*x509.Certificate) error {
		verified++
		if len(chain) != 1 || chain[0].Subject.CommonName != "current test" {
			return errors.New("unexpected chain")
		}
		return nil
	}}

	for _, tc := range []struct {
		s       *CipherSuite
		sigPriv []byte
		cert    []byte
	}{{ed, edKey.Seed(), edCert}, {p256, ecPriv, ecCert}} {
		t.Run(tc.s.Name, func(t *testing.T) {
			cred := Credential{CredentialType: CredentialX509, Certificates: []Certificate{{tc.cert}}}
			kp, _, _, err := NewKeyPackage(tc.s, tc.sigPriv, cred, KeyPackageOptions{Now: kptNow})
			if err != nil {
				t.Fatal(err)
			}
			before := verified
			if err := kp.Validate(tc.s, kptNow, policy); err != nil {
				t.Fatalf("matching x509 credential rejected: %v", err)
			}
			if verified != before+1 {
				t.Error("chain verifier not called")
			}
			kptExpectErr(t, kp.Validate(tc.s, kptNow, X509Credentials{}), "no chain verifier")
			kptExpectErr(t, kp.Validate(tc.s, kptNow, X509Credentials{Verify: func([]*x509.Certificate) error { return errors.New("untrusted") }}), "untrusted")
			kptExpectErr(t, kp.Validate(tc.s, kptNow, nil), "only basic")

			// A certificate for another key than the one that signs.
			otherPriv, _, err := tc.s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			_, _, _, err = NewKeyPackage(tc.s, otherPriv, cred, KeyPackageOptions{Now: kptNow})
			kptExpectErr(t, err, "differs")
			m := kptNewMember(t, tc.s, KeyPackageOptions{})
			m.kp.LeafNode.Credential = cred
			m.resign(t)
			kptExpectErr(t, m.kp.Validate(tc.s, kptNow, policy), "differs")
		})
	}

	// The certificate's key type must be the suite's.
	kptExpectErr(t, policy.ValidateCredential(p256, &Credential{CredentialType: CredentialX509, Certificates: []Certificate{{edCert}}}, edPub), "needs ECDSA")
	kptExpectErr(t, policy.ValidateCredential(ed, &Credential{CredentialType: CredentialX509, Certificates: []Certificate{{ecCert}}}, edPub), "needs Ed25519")
	// Ed448 and ML-DSA keys cannot be expressed through crypto/x509.
	for _, id := range []CipherSuiteID{MLS256DHKEMX448AES256GCMSHA512Ed448, MLS192MLKEM768AES256GCMSHA384MLDSA65} {
		s, _ := Suite(id)
		kptExpectErr(t, policy.ValidateCredential(s, &Credential{CredentialType: CredentialX509, Certificates: []Certificate{{edCert}}}, edPub), "not supported in x509 credentials")
	}
	// Hostile certificate data.
	for _, certs := range [][]Certificate{nil, {{nil}}, {{[]byte("junk")}}, {{edCert[:len(edCert)/2]}}} {
		if err := policy.ValidateCredential(ed, &Credential{CredentialType: CredentialX509, Certificates: certs}, edPub); err == nil {
			t.Errorf("chain %v accepted", certs)
		}
	}
	if err := policy.ValidateCredential(ed, nil, edPub); err == nil {
		t.Error("nil credential accepted")
	}
	if err := (BasicCredentials{}).ValidateCredential(ed, nil, edPub); err == nil {
		t.Error("nil credential accepted")
	}
}

func TestKeyPackageHostileInput(t *testing.T) {
	s, _ := Suite(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	var nilKP *KeyPackage
	if err := nilKP.Validate(s, kptNow, nil); err == nil {
		t.Error("nil KeyPackage validated")
	}
	empty := &KeyPackage{Version: ProtocolMLS10, CipherSuite: s.ID, LeafNode: LeafNode{LeafNodeSource: LeafNodeSourceKeyPackage}}
	for _, suite := range Suites() {
		empty.CipherSuite = suite.ID
		if err := empty.Validate(suite, kptNow, nil); err == nil {
			t.Errorf("%s: empty KeyPackage validated", suite)
		}
	}
	m := kptNewMember(t, s, KeyPackageOptions{})
	if err := m.kp.Validate(nil, kptNow, nil); err == nil {
		t.Error("nil suite accepted")
	}
	if err := m.kp.ValidateWith(nil); err == nil {
		t.Error("nil check accepted")
	}
	// Every truncation of a valid encoding must fail cleanly.
	enc, err := wire.Marshal(m.kp)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		var kp KeyPackage
		if wire.Unmarshal(enc[:i], &kp) == nil {
			if err := kp.Validate(s, kptNow, nil); err == nil {
				t.Fatalf("truncation to %d bytes validated", i)
			}
		}
	}
}
