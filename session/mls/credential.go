package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// CredentialType is the code point of a credential format (RFC 9420
// section 5.3, IANA "MLS Credential Types").
type CredentialType uint16

const (
	CredentialBasic CredentialType = 1
	CredentialX509  CredentialType = 2
)

// Certificate is one DER-encoded X.509 certificate of a chain (RFC 9420
// section 5.3).
type Certificate struct {
	CertData []byte
}

// Credential binds an identity to a member's signature key (RFC 9420
// section 5.3). Only the field selected by CredentialType is encoded.
type Credential struct {
	CredentialType CredentialType

	// Identity is the application-defined identity of a basic credential.
	Identity []byte

	// Certificates is the chain of an x509 credential, end entity first.
	Certificates []Certificate
}

func (c *Credential) MarshalMLS(w *wire.Writer) {
	w.U16(uint16(c.CredentialType))
	switch c.CredentialType {
	case CredentialBasic:
		w.Opaque(c.Identity)
	case CredentialX509:
		w.Vector(func(w *wire.Writer) {
			for i := range c.Certificates {
				w.Opaque(c.Certificates[i].CertData)
			}
		})
	default:
		w.Fail(fmt.Errorf("mls: cannot encode Credential.credential_type %d", c.CredentialType))
	}
}

// UnmarshalMLS rejects credential types other than basic and x509: their
// body has no length prefix, so there is no way to skip over it.
func (c *Credential) UnmarshalMLS(r *wire.Reader) {
	*c = Credential{CredentialType: CredentialType(r.U16())}
	switch c.CredentialType {
	case CredentialBasic:
		c.Identity = r.Opaque()
	case CredentialX509:
		r.Vector(func(r *wire.Reader) {
			c.Certificates = append(c.Certificates, Certificate{CertData: r.Opaque()})
		})
	default:
		r.Failf("mls: unknown Credential.credential_type %d", c.CredentialType)
	}
}
