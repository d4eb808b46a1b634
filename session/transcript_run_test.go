package session

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// The transcript machine: both the generator and the verifier make every
// call into a state machine through perform, one step at a time. Each
// step reseeds the process's cryptographic randomness with its own seed
// (cryptotest.SetGlobalRandom), so a side's randomness depends only on its
// own steps: the verifier can run one side alone, fed the other side's
// recorded messages, and that side then emits exactly its recorded bytes.

const (
	sideInitiator = "initiator"
	sideResponder = "responder"

	transcriptInitiatorIndex = 0x11111111
	transcriptResponderIndex = 0x22222222
	transcriptRestartedIndex = 0x33333333
	transcriptStepInterval   = time.Millisecond
	transcriptKeyLifetime    = 24 * time.Hour
)

var transcriptStart = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// transcriptMachine holds one or both sides of a transcript run.
type transcriptMachine struct {
	t    *testing.T
	tr   *transcript
	mode Transport
	ring *HelloKeyring
	sess map[string]*Session
}

// stepResult is what one call produced.
type stepResult struct {
	out        [][]byte
	events     []string
	packets    [][]byte
	epoch      uint64
	keys       *epochKeys
	keyPackage *keyPackageSecrets
	sealed     *sealedSecrets
}

func newTranscriptMachine(t *testing.T, tr *transcript) (*transcriptMachine, error) {
	m := &transcriptMachine{t: t, tr: tr, mode: Stream, sess: map[string]*Session{}}
	if tr.Mode == modeName(Datagram) {
		m.mode = Datagram
	}
	id, err := transcriptSuiteID(tr)
	if err != nil {
		return nil, err
	}
	pair, err := ParseHelloKeyPair(tr.Keys.ResponderHelloKeyPair)
	if err != nil {
		return nil, fmt.Errorf("responder hello key pair: %v", err)
	}
	if m.ring, err = NewHelloKeyring(id, 0); err != nil {
		return nil, err
	}
	if err := m.ring.Install(pair); err != nil {
		return nil, err
	}
	return m, nil
}

func transcriptSuiteID(tr *transcript) (mls.CipherSuiteID, error) {
	var v uint16
	if _, err := fmt.Sscanf(tr.Suite, "0x%04x", &v); err != nil {
		return 0, fmt.Errorf("suite %q: %v", tr.Suite, err)
	}
	return mls.CipherSuiteID(v), nil
}

// config is a side's session.Config for a step with the given seed.
func (m *transcriptMachine) config(side string, seed uint64) (Config, error) {
	id, err := transcriptSuiteID(m.tr)
	if err != nil {
		return Config{}, err
	}
	k := m.tr.Keys
	cfg := Config{Suite: id, Transport: m.mode, Rand: seededReader(seed), UpdateInterval: -1, UpdateBytes: -1}
	if side == sideInitiator {
		cfg.Role, cfg.SigningKey, cfg.PeerPublicKey = Initiator, k.InitiatorSignaturePrivate, k.ResponderSignaturePublic
		cfg.HideIdentity = true
		if m.mode == Datagram {
			cfg.LocalIndex = transcriptInitiatorIndex
		}
		return cfg, nil
	}
	cfg.Role, cfg.SigningKey, cfg.PeerPublicKey = Responder, k.ResponderSignaturePrivate, k.InitiatorSignaturePublic
	cfg.HelloKeys = m.ring
	if m.mode == Datagram {
		cfg.LocalIndex = transcriptResponderIndex
	}
	return cfg, nil
}

// seededReader is a step's Config.Rand: ChaCha8 keyed with its seed.
func seededReader(seed uint64) seeded {
	var k [32]byte
	for i := range 8 {
		k[i] = byte(seed >> (8 * i))
	}
	return seeded{rand.NewChaCha8(k)}
}

// perform makes the call of step st on its side. in is the received
// message of a receive step.
func (m *transcriptMachine) perform(st *transcriptStep, in []byte) (*stepResult, error) {
	now, err := parseTime(st.Time)
	if err != nil {
		return nil, err
	}
	cryptotest.SetGlobalRandom(m.t, st.Seed)
	s := m.sess[st.Side]
	if s == nil && st.Action != "start" {
		return nil, fmt.Errorf("%s: %s before start", st.Side, st.Action)
	}
	var kpBefore *mls.KeyPackage
	var sentBefore time.Time
	if s != nil {
		kpBefore, sentBefore = s.kp, s.hide.sent
	}
	switch st.Action {
	case "start":
		err = m.start(st, now, Config{})
	case "restart":
		err = m.restart(st, s, now)
	case "receive":
		// A datagram is opened in place: the recorded bytes must stay.
		in = bytes.Clone(in)
		if m.mode == Datagram {
			err = s.HandleDatagram(now, in)
		} else {
			err = s.HandleStream(now, in)
		}
	case "send_packet":
		err = s.SendPacket(now, st.Plaintext)
	case "update":
		err = s.Update(now)
	default:
		err = fmt.Errorf("unknown action %q", st.Action)
	}
	if err != nil {
		return nil, fmt.Errorf("step %d (%s %s): %w", st.Index, st.Side, st.Action, err)
	}
	s = m.sess[st.Side]
	r := &stepResult{out: s.Outgoing(), packets: s.Packets(), epoch: s.Epoch()}
	for _, e := range s.Events() {
		r.events = append(r.events, eventString(e))
	}
	if s.Established() {
		k, err := s.epochRecordKeys()
		if err != nil {
			return nil, err
		}
		r.keys = &k
	}
	if s.kp != nil && s.kp != kpBefore {
		r.keyPackage = s.keyPackageView()
	}
	if !s.hide.sent.Equal(sentBefore) {
		r.sealed = s.sealedView()
	}
	return r, nil
}

// start makes a side's session. base carries what a restart keeps.
func (m *transcriptMachine) start(st *transcriptStep, now time.Time, base Config) error {
	cfg, err := m.config(st.Side, st.Seed)
	if err != nil {
		return err
	}
	cfg.Resume, cfg.PeerHelloKey, cfg.HelloFloor, cfg.PeerIndex = base.Resume, base.PeerHelloKey, base.HelloFloor, base.PeerIndex
	if base.LocalIndex != 0 {
		cfg.LocalIndex = base.LocalIndex
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	m.sess[st.Side] = s
	return s.Start(now)
}

// restart replaces a side's session by one restored from its State, as a
// daemon that restarts does: the old one vanishes without a word, and the
// new one keeps what the daemon persists per peer (the group, the peer's
// hello key and hello time).
func (m *transcriptMachine) restart(st *transcriptStep, old *Session, now time.Time) error {
	state, err := old.State()
	if err != nil {
		return err
	}
	base := Config{Resume: state, PeerHelloKey: old.PeerHelloKey(), HelloFloor: old.HelloTime()}
	if m.mode == Datagram && st.Side == sideInitiator {
		base.LocalIndex, base.PeerIndex = transcriptRestartedIndex, old.PeerIndex()
	}
	old.shutdown(errors.New("restart"))
	old.Events()
	return m.start(st, now, base)
}

func eventString(e Event) string {
	switch e := e.(type) {
	case Established:
		return fmt.Sprintf("established epoch %d", e.Epoch)
	case EpochChanged:
		return fmt.Sprintf("epoch changed to %d", e.Epoch)
	case Closed:
		return fmt.Sprintf("closed: %v", e.Reason)
	}
	return fmt.Sprintf("%T", e)
}

// sameBytes compares two lists of byte strings.
func sameBytes(a [][]byte, b []hexBytes) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
