package mls

import (
	"fmt"

	"github.com/current-vpn/current/session/mls/wire"
)

// PSK is a pre-shared key together with the identifier it was injected under.
type PSK struct {
	ID     PreSharedKeyID
	Secret []byte
}

// PSKSecret chains a list of PSKs into the psk_secret input of the key
// schedule (RFC 9420 section 8.4). An empty list gives the all-zero secret.
func (s *CipherSuite) PSKSecret(psks []PSK) ([]byte, error) {
	if len(psks) > 0xffff {
		return nil, fmt.Errorf("mls: %d PSKs exceed the uint16 count of PSKLabel", len(psks))
	}
	secret := make([]byte, s.Nh())
	zeroSalt := make([]byte, s.Nh())
	for i := range psks {
		w := wire.NewWriter(nil)
		psks[i].ID.MarshalMLS(w)
		w.U16(uint16(i))
		w.U16(uint16(len(psks)))
		label, err := w.Bytes()
		if err != nil {
			zero(secret)
			return nil, err
		}
		extracted := s.Extract(zeroSalt, psks[i].Secret)
		input, err := s.ExpandWithLabel(extracted, "derived psk", label, s.Nh())
		zero(extracted)
		if err != nil {
			zero(secret)
			return nil, err
		}
		next := s.Extract(input, secret)
		zeroAll(input, secret)
		secret = next
	}
	return secret, nil
}
