package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// Transcript hashes (RFC 9420 section 8.2) chain every Commit into the group
// context: the confirmed hash covers a Commit up to its signature, the
// interim hash adds its confirmation tag.

// ConfirmedTranscriptHash computes
// Hash(interim_before || ConfirmedTranscriptHashInput{wire_format, content, signature}).
func (s *CipherSuite) ConfirmedTranscriptHash(interimBefore []byte, ac *AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != ContentTypeCommit {
		return nil, fmt.Errorf("mls: transcript hash over %d content, want a commit", ac.Content.ContentType)
	}
	return s.digestOf(func(w *wire.Writer) {
		w.Raw(interimBefore)
		w.U16(uint16(ac.WireFormat))
		ac.Content.MarshalMLS(w)
		w.Opaque(ac.Auth.Signature)
	})
}

// InterimTranscriptHash computes
// Hash(confirmed || InterimTranscriptHashInput{confirmation_tag}).
func (s *CipherSuite) InterimTranscriptHash(confirmed, confirmationTag []byte) ([]byte, error) {
	return s.digestOf(func(w *wire.Writer) {
		w.Raw(confirmed)
		w.Opaque(confirmationTag)
	})
}

// ConfirmationTag is MAC(confirmation_key, confirmed_transcript_hash).
func (s *CipherSuite) ConfirmationTag(confirmationKey, confirmedTranscriptHash []byte) []byte {
	return s.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks a received confirmation tag in constant time.
func (s *CipherSuite) VerifyConfirmationTag(confirmationKey, confirmedTranscriptHash, tag []byte) error {
	if !s.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag) {
		return errBadConfirmationTag
	}
	return nil
}
