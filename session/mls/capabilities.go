package mls

import (
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/current-vpn/current/session/mls/wire"
)

// RequiredCapabilities is the required_capabilities GroupContext extension
// (RFC 9420 section 11.1): what every member of the group must support.
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

func (c *RequiredCapabilities) MarshalMLS(w *wire.Writer) {
	marshalU16s(w, c.ExtensionTypes)
	marshalU16s(w, c.ProposalTypes)
	marshalU16s(w, c.CredentialTypes)
}

func (c *RequiredCapabilities) UnmarshalMLS(r *wire.Reader) {
	c.ExtensionTypes = unmarshalU16s[ExtensionType](r)
	c.ProposalTypes = unmarshalU16s[ProposalType](r)
	c.CredentialTypes = unmarshalU16s[CredentialType](r)
}

// ParseRequiredCapabilities decodes the required_capabilities extension of
// a GroupContext extension list. It returns nil, nil when the group has none,
// which means nothing beyond suite and version is required.
func ParseRequiredCapabilities(es Extensions) (*RequiredCapabilities, error) {
	data, ok := es.Find(ExtRequiredCapabilities)
	if !ok {
		return nil, nil
	}
	rc := new(RequiredCapabilities)
	if err := wire.Unmarshal(data, rc); err != nil {
		return nil, fmt.Errorf("mls: invalid required_capabilities extension: %w", err)
	}
	return rc, nil
}

// Supports reports whether c meets every requirement of rc. Default
// extension and proposal types count as supported without being listed,
// since RFC 9420 section 7.2 forbids listing them; credential types have no
// defaults and must always be listed. A nil rc requires nothing.
func (c *Capabilities) Supports(rc *RequiredCapabilities) bool {
	if rc == nil {
		return true
	}
	for _, t := range rc.ExtensionTypes {
		if !c.SupportsExtension(t) {
			return false
		}
	}
	for _, t := range rc.ProposalTypes {
		if !c.SupportsProposal(t) {
			return false
		}
	}
	for _, t := range rc.CredentialTypes {
		if !slices.Contains(c.Credentials, t) {
			return false
		}
	}
	return true
}

// SupportsExtension reports whether an extension type is a default one or
// listed in c.
func (c *Capabilities) SupportsExtension(t ExtensionType) bool {
	return isDefaultExtension(t) || slices.Contains(c.Extensions, t)
}

// SupportsProposal reports whether a proposal type is a default one or
// listed in c.
func (c *Capabilities) SupportsProposal(t ProposalType) bool {
	return isDefaultProposal(t) || slices.Contains(c.Proposals, t)
}

// supportedExtensions are the non-default extension types this
// implementation understands; DefaultCapabilities advertises exactly these,
// and a client must not advertise what it cannot process (section 13.4).
var supportedExtensions []ExtensionType

// DefaultCapabilities is what this implementation supports: MLS 1.0, every
// cipher suite it implements, basic and x509 credentials, and the
// non-default extensions it understands. Default proposal and extension
// types are left out because section 7.2 forbids listing them. It carries no
// GREASE: section 13.5 keeps GREASE out of a client's own view of its
// capabilities; NewKeyPackage adds it to what is sent.
func DefaultCapabilities() Capabilities {
	c := Capabilities{
		Versions:    []ProtocolVersion{ProtocolMLS10},
		Extensions:  slices.Clone(supportedExtensions),
		Credentials: []CredentialType{CredentialBasic, CredentialX509},
	}
	for _, s := range Suites() {
		c.CipherSuites = append(c.CipherSuites, s.ID)
	}
	return c
}

// isDefaultExtension reports whether t is one of the extension types of RFC
// 9420 that every client implements (section 7.2).
func isDefaultExtension(t ExtensionType) bool {
	return t >= ExtApplicationID && t <= ExtExternalSenders
}

// isDefaultProposal reports whether t is one of the proposal types of RFC
// 9420 that every client implements (section 7.2).
func isDefaultProposal(t ProposalType) bool {
	return t >= ProposalAdd && t <= ProposalGroupContextExtensions
}

// isGREASE reports whether v is one of the values section 13.5 reserves for
// GREASE. 0xFAFA has the same shape but lies in the private-use range, so it
// is not one of them.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>12 == (v>>4)&0xf && v != 0xfafa
}

// randomGREASE returns one of the 15 GREASE values. Its only purpose is to
// vary what peers see, but it draws from crypto/rand rather than math/rand
// so that a test which fixes the process's randomness
// (testing/cryptotest.SetGlobalRandom; the published transcripts in
// docs/transcripts) gets the same KeyPackage every time. The bias of one
// byte modulo 15 (256 = 17*15 + 1) does not matter here.
func randomGREASE() uint16 {
	var b [1]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24 on)
	return 0x0a0a + 0x1010*uint16(b[0]%15)
}

// withGREASE returns a copy of c with one random GREASE value added to each
// list section 13.5 asks to be greased, so that peers that wrongly reject
// unknown values fail early, against us, rather than later against a real
// extension.
func withGREASE(c Capabilities) Capabilities {
	return Capabilities{
		Versions:     slices.Clone(c.Versions),
		CipherSuites: cloneAppend(c.CipherSuites, CipherSuiteID(randomGREASE())),
		Extensions:   cloneAppend(c.Extensions, ExtensionType(randomGREASE())),
		Proposals:    cloneAppend(c.Proposals, ProposalType(randomGREASE())),
		Credentials:  cloneAppend(c.Credentials, CredentialType(randomGREASE())),
	}
}

// cloneAppend is append(slices.Clone(list), v) in one allocation.
func cloneAppend[T any](list []T, v T) []T {
	return append(append(make([]T, 0, len(list)+1), list...), v)
}
