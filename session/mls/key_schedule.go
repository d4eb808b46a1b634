package mls

import (
	"fmt"
)

// Labels of the secrets derived from an epoch secret (RFC 9420 section 8).
const (
	labelJoiner         = "joiner"
	labelWelcome        = "welcome"
	labelEpoch          = "epoch"
	labelInit           = "init"
	labelSenderData     = "sender data"
	labelEncryption     = "encryption"
	labelExporter       = "exporter"
	labelExternal       = "external"
	labelConfirm        = "confirm"
	labelMembership     = "membership"
	labelResumption     = "resumption"
	labelAuthentication = "authentication"
	labelExported       = "exported"
)

// EpochSecrets are the secrets of one epoch of a group. The epoch secret
// itself is deleted as soon as these are derived (section 9.2); each field is
// zeroed by Wipe when the epoch ends.
type EpochSecrets struct {
	suite *CipherSuite

	SenderDataSecret   []byte
	EncryptionSecret   []byte
	ExporterSecret     []byte
	ExternalSecret     []byte
	ConfirmationKey    []byte
	MembershipKey      []byte
	ResumptionPSK      []byte
	EpochAuthenticator []byte
	// InitSecret seeds the next epoch's key schedule.
	InitSecret []byte
}

// JoinerSecret computes ExpandWithLabel(Extract(init_secret, commit_secret),
// "joiner", GroupContext, Nh), the secret a Welcome hands to new members.
func (s *CipherSuite) JoinerSecret(initSecret, commitSecret []byte, gc *GroupContext) ([]byte, error) {
	prk := s.Extract(initSecret, s.orZero(commitSecret))
	defer zero(prk)
	var joiner []byte
	err := withScratch(gc.MarshalMLS, func(gcBytes []byte) (err error) {
		joiner, err = s.ExpandWithLabel(prk, labelJoiner, gcBytes, s.Nh())
		return err
	})
	return joiner, err
}

// orZero returns b, or Nh zero bytes for an absent value: the key schedule
// substitutes zero for a missing commit secret or PSK secret.
func (s *CipherSuite) orZero(b []byte) []byte {
	if b == nil {
		return make([]byte, s.Nh())
	}
	return b
}

// memberSecret is Extract(joiner_secret, psk_secret), from which both the
// welcome secret and the epoch secret come.
func (s *CipherSuite) memberSecret(joinerSecret, pskSecret []byte) []byte {
	return s.Extract(joinerSecret, s.orZero(pskSecret))
}

// WelcomeSecret is DeriveSecret(Extract(joiner, psk), "welcome").
func (s *CipherSuite) WelcomeSecret(joinerSecret, pskSecret []byte) ([]byte, error) {
	ms := s.memberSecret(joinerSecret, pskSecret)
	defer zero(ms)
	return s.DeriveSecret(ms, labelWelcome)
}

// WelcomeKeyNonce derives the AEAD key and nonce that protect a Welcome's
// GroupInfo from the welcome secret (section 12.4.3.1).
func (s *CipherSuite) WelcomeKeyNonce(welcomeSecret []byte) (key, nonce []byte, err error) {
	e := s.newExpander(welcomeSecret)
	key, err = e.expandWithLabel("key", nil, s.KeySize)
	if err != nil {
		return nil, nil, err
	}
	nonce, err = e.expandWithLabel("nonce", nil, s.NonceSize)
	if err != nil {
		zero(key)
		return nil, nil, err
	}
	return key, nonce, nil
}

// NewEpochSecrets runs the key schedule from a joiner secret: the path a new
// member takes, and the second half of the path an existing member takes.
func (s *CipherSuite) NewEpochSecrets(joinerSecret, pskSecret []byte, gc *GroupContext) (*EpochSecrets, error) {
	ms := s.memberSecret(joinerSecret, pskSecret)
	defer zero(ms)
	return s.epochSecretsFromMember(ms, gc)
}

// epochSecretsFromMember is the key schedule from the member secret
// Extract(joiner_secret, psk_secret) on.
func (s *CipherSuite) epochSecretsFromMember(memberSecret []byte, gc *GroupContext) (*EpochSecrets, error) {
	var epochSecret []byte
	err := withScratch(gc.MarshalMLS, func(gcBytes []byte) (err error) {
		epochSecret, err = s.ExpandWithLabel(memberSecret, labelEpoch, gcBytes, s.Nh())
		return err
	})
	if err != nil {
		return nil, err
	}
	defer zero(epochSecret)
	return s.epochSecretsFrom(epochSecret)
}

// epochSecretsFrom derives the secrets of an epoch from its epoch secret,
// which the caller zeroes.
func (s *CipherSuite) epochSecretsFrom(epochSecret []byte) (*EpochSecrets, error) {
	ex := s.newExpander(epochSecret)
	// One allocation for the nine secrets; Wipe zeroes each of them.
	out, err := ex.deriveSecrets(labelSenderData, labelEncryption, labelExporter, labelExternal,
		labelConfirm, labelMembership, labelResumption, labelAuthentication, labelInit)
	if err != nil {
		return nil, fmt.Errorf("mls: deriving epoch secrets: %w", err)
	}
	e := &EpochSecrets{suite: s,
		SenderDataSecret: out[0], EncryptionSecret: out[1], ExporterSecret: out[2], ExternalSecret: out[3],
		ConfirmationKey: out[4], MembershipKey: out[5], ResumptionPSK: out[6], EpochAuthenticator: out[7],
		InitSecret: out[8]}
	return e, nil
}

// commitEpochSecrets derives, of the secrets of an epoch that is only
// committed from, by its one member, before anyone else could use it
// (NewGroupWithMember), those the commit needs: the confirmation key for
// the epoch's interim transcript hash, the init secret for the next epoch,
// and the resumption PSK, which a group remembers of every epoch. The
// others would protect or export nothing.
func (s *CipherSuite) commitEpochSecrets(epochSecret []byte) (*EpochSecrets, error) {
	ex := s.newExpander(epochSecret)
	out, err := ex.deriveSecrets(labelConfirm, labelResumption, labelInit)
	if err != nil {
		return nil, fmt.Errorf("mls: deriving epoch secrets: %w", err)
	}
	return &EpochSecrets{suite: s, ConfirmationKey: out[0], ResumptionPSK: out[1], InitSecret: out[2]}, nil
}

// NextEpochSecrets runs the whole key schedule of an existing member: from the
// previous epoch's init secret, the commit secret (nil for a Commit without a
// path) and the PSK secret (nil when no PSK is used) under the new group
// context. It also returns the joiner secret for the Welcome.
func (s *CipherSuite) NextEpochSecrets(initSecret, commitSecret, pskSecret []byte, gc *GroupContext) (secrets *EpochSecrets, joinerSecret []byte, err error) {
	secrets, joinerSecret, _, err = s.nextEpochSecrets(initSecret, commitSecret, pskSecret, gc, false)
	return secrets, joinerSecret, err
}

// nextEpochSecrets is NextEpochSecrets that, with welcome, also returns the
// welcome secret: a committer adding members needs it for the Welcome, and
// both come from the same member secret, which is then extracted once.
func (s *CipherSuite) nextEpochSecrets(initSecret, commitSecret, pskSecret []byte, gc *GroupContext, welcome bool) (secrets *EpochSecrets, joinerSecret, welcomeSecret []byte, err error) {
	joinerSecret, err = s.JoinerSecret(initSecret, commitSecret, gc)
	if err != nil {
		return nil, nil, nil, err
	}
	ms := s.memberSecret(joinerSecret, pskSecret)
	defer zero(ms)
	if welcome {
		if welcomeSecret, err = s.DeriveSecret(ms, labelWelcome); err != nil {
			zero(joinerSecret)
			return nil, nil, nil, err
		}
	}
	secrets, err = s.epochSecretsFromMember(ms, gc)
	if err != nil {
		zeroAll(joinerSecret, welcomeSecret)
		return nil, nil, nil, err
	}
	return secrets, joinerSecret, welcomeSecret, nil
}

// Suite returns the cipher suite the secrets belong to.
func (e *EpochSecrets) Suite() *CipherSuite { return e.suite }

// Export is MLS-Exporter(label, context, length) of section 8.5.
func (e *EpochSecrets) Export(label string, context []byte, length int) ([]byte, error) {
	if e.ExporterSecret == nil {
		return nil, fmt.Errorf("mls: exporter secret already wiped")
	}
	return e.suite.exportFrom(e.ExporterSecret, label, context, length)
}

func (s *CipherSuite) exportFrom(exporterSecret []byte, label string, context []byte, length int) ([]byte, error) {
	derived, err := s.DeriveSecret(exporterSecret, label)
	if err != nil {
		return nil, err
	}
	defer zero(derived)
	return s.ExpandWithLabel(derived, labelExported, s.Digest(context), length)
}

// ExternalKeyPair derives the group's external HPKE key pair from the
// external secret, whose public half goes into GroupInfo's external_pub.
func (e *EpochSecrets) ExternalKeyPair() (priv, pub []byte, err error) {
	return e.suite.DeriveHPKEKeyPair(e.ExternalSecret)
}

// Wipe zeroes every secret of the epoch.
func (e *EpochSecrets) Wipe() {
	zeroAll(e.SenderDataSecret, e.EncryptionSecret, e.ExporterSecret, e.ExternalSecret,
		e.ConfirmationKey, e.MembershipKey, e.ResumptionPSK, e.EpochAuthenticator, e.InitSecret)
	*e = EpochSecrets{suite: e.suite}
}
