package mls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
)

// CredentialValidator is the Authentication Service of RFC 9420 section
// 5.3.1: it decides whether a credential legitimately binds its identity to
// signatureKey. MLS calls it whenever a credential enters the group; the
// successor check for replaced credentials is the caller's.
type CredentialValidator interface {
	ValidateCredential(s *CipherSuite, cred *Credential, signatureKey []byte) error
}

// BasicCredentials accepts any basic credential and nothing else. A basic
// credential proves nothing by itself; it is safe here only because current
// pins members' signature keys out of band, outside MLS.
type BasicCredentials struct{}

func (BasicCredentials) ValidateCredential(s *CipherSuite, cred *Credential, signatureKey []byte) error {
	if cred == nil {
		return errors.New("mls: missing credential")
	}
	if cred.CredentialType != CredentialBasic {
		return fmt.Errorf("mls: credential type %d not accepted, only basic credentials are", cred.CredentialType)
	}
	return nil
}

// X509Credentials accepts x509 credentials whose end-entity certificate holds
// the leaf's signature key (section 5.3). Whether the chain is trusted is
// policy, so it is left to Verify, which receives the decoded chain, end
// entity first. A nil Verify rejects every credential: accepting an
// unverified certificate would be no better than a basic credential, while
// looking like more.
type X509Credentials struct {
	Verify func(chain []*x509.Certificate) error
}

func (v X509Credentials) ValidateCredential(s *CipherSuite, cred *Credential, signatureKey []byte) error {
	if cred == nil {
		return errors.New("mls: missing credential")
	}
	if cred.CredentialType != CredentialX509 {
		return fmt.Errorf("mls: credential type %d not accepted, only x509 credentials are", cred.CredentialType)
	}
	chain, err := parseX509Chain(cred)
	if err != nil {
		return err
	}
	if err := x509KeyMatches(s, chain[0], signatureKey); err != nil {
		return err
	}
	if v.Verify == nil {
		return errors.New("mls: x509 credential: no chain verifier configured")
	}
	if err := v.Verify(chain); err != nil {
		return fmt.Errorf("mls: x509 credential rejected: %w", err)
	}
	return nil
}

// parseX509Chain decodes every certificate of an x509 credential.
func parseX509Chain(cred *Credential) (chain []*x509.Certificate, err error) {
	defer recoverAsError(&err, "parsing x509 credential")
	if len(cred.Certificates) == 0 {
		return nil, errors.New("mls: x509 credential holds no certificate")
	}
	chain = make([]*x509.Certificate, 0, len(cred.Certificates))
	for i := range cred.Certificates {
		c, err := x509.ParseCertificate(cred.Certificates[i].CertData)
		if err != nil {
			return nil, fmt.Errorf("mls: x509 credential certificate %d: %w", i, err)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// x509KeyMatches checks that the certificate's subject public key is the
// suite's kind of key and, in the suite's encoding, equals signatureKey.
// Comparing encodings rather than trusting the certificate's algorithm alone
// also rejects a P-384 key presented in a P-256 suite.
func x509KeyMatches(s *CipherSuite, cert *x509.Certificate, signatureKey []byte) error {
	if s == nil {
		return errors.New("mls: no cipher suite")
	}
	var enc []byte
	switch s.Signature {
	case SigEd25519:
		pk, ok := cert.PublicKey.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("mls: x509 credential: certificate key is %v, suite %s needs Ed25519", cert.PublicKeyAlgorithm, s.Name)
		}
		enc = pk
	case SigEd448, SigMLDSA65:
		// crypto/x509 cannot decode these key types, so there is nothing to
		// compare the signature key with.
		return fmt.Errorf("mls: suite %s: signature scheme %#04x not supported in x509 credentials", s.Name, uint16(s.Signature))
	default:
		p, ok := s.ecdsaParams()
		if !ok {
			return s.errUnsupportedSignature()
		}
		pk, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pk.Curve != p.curve {
			return fmt.Errorf("mls: x509 credential: certificate key is %v, suite %s needs ECDSA %s", cert.PublicKeyAlgorithm, s.Name, p.curve.Params().Name)
		}
		b, err := pk.Bytes()
		if err != nil {
			return fmt.Errorf("mls: x509 credential: %w", err)
		}
		enc = b
	}
	if !bytes.Equal(enc, signatureKey) {
		return errors.New("mls: x509 credential: certificate key differs from the leaf's signature key")
	}
	return nil
}
