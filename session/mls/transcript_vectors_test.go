package mls

import (
	"testing"

	"github.com/current-vpn/current/session/mls/wire"
)

func init() { registerVectorChecker("transcript-hashes", checkTranscriptHashVectors) }

type transcriptHashVector struct {
	CipherSuite                  uint16   `json:"cipher_suite"`
	ConfirmationKey              hexBytes `json:"confirmation_key"`
	AuthenticatedContent         hexBytes `json:"authenticated_content"`
	InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
	ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
	InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
}

func checkTranscriptHashVectors(t *testing.T, data []byte) {
	for i, tc := range decodeVectors[transcriptHashVector](t, data) {
		s := mustSuite(t, tc.CipherSuite)
		where := s.Name + " case " + itoa(i) + ": "
		var ac AuthenticatedContent
		if err := wire.Unmarshal(tc.AuthenticatedContent, &ac); err != nil {
			t.Fatalf("%sdecoding authenticated_content: %v", where, err)
		}
		if ac.Content.ContentType != ContentTypeCommit || ac.Content.Commit == nil {
			t.Fatalf("%sauthenticated_content does not hold a Commit", where)
		}
		if err := s.VerifyConfirmationTag(tc.ConfirmationKey, tc.ConfirmedTranscriptHashAfter, ac.Auth.ConfirmationTag); err != nil {
			t.Errorf("%sconfirmation tag: %v", where, err)
		}
		confirmed, err := s.ConfirmedTranscriptHash(tc.InterimTranscriptHashBefore, &ac)
		if err != nil {
			t.Fatalf("%s%v", where, err)
		}
		expectEqual(t, where+"confirmed_transcript_hash_after", confirmed, tc.ConfirmedTranscriptHashAfter)
		interim, err := s.InterimTranscriptHash(confirmed, ac.Auth.ConfirmationTag)
		if err != nil {
			t.Fatalf("%s%v", where, err)
		}
		expectEqual(t, where+"interim_transcript_hash_after", interim, tc.InterimTranscriptHashAfter)

		// A tag under another key must not verify: the check above can fail.
		wrongKey := append([]byte(nil), tc.ConfirmationKey...)
		wrongKey[0] ^= 1
		if s.VerifyConfirmationTag(wrongKey, confirmed, ac.Auth.ConfirmationTag) == nil {
			t.Errorf("%sconfirmation tag verified under a wrong key", where)
		}
	}
}
