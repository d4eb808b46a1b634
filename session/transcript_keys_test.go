package session

import (
	"bytes"
	"crypto/hkdf"
	"encoding/binary"

	"github.com/current-vpn/current/session/record"
)

// Test-only views of a session's secrets for the transcripts. They derive
// again what the session derived (the record package keeps key and IV
// inside its AEAD), so the published values come from the same group
// through the same labels.

// epochRecordKeys exports both traffic secrets of the session's current
// epoch, as record.DeriveEpochKeys does, and expands the write key and IV
// of each (RFC 9846 sections 7.1 and 7.3).
func (s *Session) epochRecordKeys() (epochKeys, error) {
	es := s.group.EpochSecrets()
	k := epochKeys{Epoch: s.group.Epoch(), ExporterSecret: bytes.Clone(es.ExporterSecret), EpochAuthenticator: bytes.Clone(es.EpochAuthenticator)}
	var err error
	for _, d := range []struct {
		label           string
		secret, key, iv *hexBytes
	}{
		{record.ClientTrafficLabel, &k.ClientTrafficSecret, &k.ClientKey, &k.ClientIV},
		{record.ServerTrafficLabel, &k.ServerTrafficSecret, &k.ServerKey, &k.ServerIV},
	} {
		hash := s.rsuite.Hash
		if *d.secret, err = s.group.Export(d.label, nil, hash.Size()); err != nil {
			return k, err
		}
		if *d.key, err = tls13ExpandLabel(s.rsuite, *d.secret, "key", s.rsuite.AEAD.KeyLen()); err != nil {
			return k, err
		}
		if *d.iv, err = tls13ExpandLabel(s.rsuite, *d.secret, "iv", 12); err != nil {
			return k, err
		}
	}
	return k, nil
}

// tls13ExpandLabel is HKDF-Expand-Label with an empty context, written
// out here from RFC 9846 rather than reached into package record, so that
// the published keys are an independent check of that package.
func tls13ExpandLabel(s record.Suite, secret []byte, label string, n int) ([]byte, error) {
	full := "tls13 " + label
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(append(append(info, byte(len(full))), full...), 0)
	return hkdf.Expand(s.Hash.New, secret, string(info), n)
}

// keyPackageView is the initiator's pending KeyPackage private keys.
func (s *Session) keyPackageView() *keyPackageSecrets {
	if s.kpSecrets == nil {
		return nil
	}
	return &keyPackageSecrets{
		InitPrivate:       bytes.Clone(s.kpSecrets.InitPriv),
		EncryptionPrivate: bytes.Clone(s.kpSecrets.EncryptionPriv),
	}
}

// sealedView is what the initiator sealed last: the inner hello envelope,
// its timestamp and the answer key.
func (s *Session) sealedView() *sealedSecrets {
	if len(s.hide.answerKeys) == 0 || s.hide.pending == nil {
		return nil
	}
	return &sealedSecrets{
		Timestamp: formatTime(s.hide.sent),
		Inner:     bytes.Clone(s.hide.pending),
		AnswerKey: bytes.Clone(s.hide.answerKeys[len(s.hide.answerKeys)-1]),
	}
}
