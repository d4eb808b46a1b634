package session

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/current-vpn/current/session/mls"
)

var updateTranscripts = flag.Bool("update-transcripts", false, "rewrite docs/transcripts from the code")

// generator runs both sides of a transcript and records every step.
type generator struct {
	*transcriptMachine
	// pending are the messages each side emitted and the other has not
	// received yet.
	pending map[string][]int
	epochs  map[uint64]bool
}

func other(side string) string {
	if side == sideInitiator {
		return sideResponder
	}
	return sideInitiator
}

// step performs one call on side and records it; label names the
// messages it emits ("" when it must emit none).
func (g *generator) step(side, action string, input *int, plaintext []byte, label string) {
	g.t.Helper()
	n := len(g.tr.Steps)
	st := transcriptStep{Index: n, Side: side, Action: action, Seed: g.tr.Seed<<16 | uint64(n),
		Time: formatTime(transcriptStart.Add(time.Duration(n) * transcriptStepInterval)), Input: input, Plaintext: plaintext}
	var in []byte
	if input != nil {
		in = g.tr.Messages[*input].Bytes
	}
	r, err := g.perform(&st, in)
	if err != nil {
		g.t.Fatal(err)
	}
	if len(r.out) > 0 && label == "" {
		g.t.Fatalf("step %d (%s %s) emitted %d unexpected messages", n, side, action, len(r.out))
	}
	for k, b := range r.out {
		l := label
		if len(r.out) > 1 {
			l = fmt.Sprintf("%s [%d/%d]", label, k+1, len(r.out))
		}
		idx := len(g.tr.Messages)
		g.tr.Messages = append(g.tr.Messages, transcriptMessage{Index: idx, Step: n, From: side, Label: l, Bytes: bytes.Clone(b)})
		st.Output = append(st.Output, idx)
		g.pending[side] = append(g.pending[side], idx)
	}
	st.Events, st.Epoch, st.KeyPackage, st.Sealed = r.events, r.epoch, r.keyPackage, r.sealed
	for _, p := range r.packets {
		st.Packets = append(st.Packets, bytes.Clone(p))
	}
	if r.keys != nil && !g.epochs[r.keys.Epoch] {
		g.epochs[r.keys.Epoch] = true
		g.tr.Epochs = append(g.tr.Epochs, *r.keys)
	}
	g.tr.Steps = append(g.tr.Steps, st)
}

// deliver hands everything from has sent so far to the other side, one
// message per step; label names the replies.
func (g *generator) deliver(from, label string) {
	g.t.Helper()
	msgs := g.pending[from]
	g.pending[from] = nil
	for _, idx := range msgs {
		g.tr.Messages[idx].ReceivedIn = len(g.tr.Steps)
		g.step(other(from), "receive", &idx, nil, label)
	}
}

func (g *generator) quiet() {
	g.t.Helper()
	for side, p := range g.pending {
		if len(p) > 0 {
			g.t.Fatalf("%s has %d undelivered messages", side, len(p))
		}
	}
}

// generateTranscript runs the published scenario: the hello-key exchange
// and the sealed handshake, a packet each way, an update to epoch 2 and
// a packet each way under it, a restart from State and the sealed
// resumption, and a packet each way after it.
func generateTranscript(t *testing.T, c transcriptCase) *transcript {
	s, err := mls.Suite(c.suite)
	if err != nil {
		t.Fatal(err)
	}
	tr := &transcript{
		Description: "Test transcript of the current session protocol with identity hiding: the hello-key exchange, the sealed handshake, " +
			"the first application record each way, one update (ConnectionUpdate/EpochKeyUpdate) with epoch-2 records, " +
			"and a sealed resumption after a restart. Regenerated and verified by session/transcript_test.go; format in docs/transcripts/README.md.",
		Protocol:    "current 1.1 (docs/protocol.md section 7)",
		WireVersion: ProtocolVersion,
		Suite:       fmt.Sprintf("%#04x", uint16(c.suite)),
		SuiteName:   s.Name,
		Mode:        modeName(c.mode),
		GoVersion:   runtime.Version(),
		Seed:        c.seed,
		Randomness: "Go testing/cryptotest.SetGlobalRandom(step.seed) before every step; key generation before step 0 with SetGlobalRandom(seed); " +
			"a session's Config.Rand is ChaCha8 keyed with the little-endian seed of the step that created it. An outside implementation uses the listed secrets instead.",
		Config: transcriptConfig{
			StartTime:         formatTime(transcriptStart),
			StepInterval:      transcriptStepInterval.String(),
			HelloKeyNotBefore: formatTime(transcriptStart),
			HelloKeyNotAfter:  formatTime(transcriptStart.Add(transcriptKeyLifetime)),
			UpdatePolicy:      "disabled (updates only when the transcript asks)",
		},
	}
	if c.mode == Datagram {
		tr.Config.InitiatorIndex, tr.Config.ResponderIndex, tr.Config.RestartedIndex = transcriptInitiatorIndex, transcriptResponderIndex, transcriptRestartedIndex
		tr.Config.MaxDatagramSize = DefaultMaxDatagramSize
	}
	tr.Keys = transcriptTestKeys(t, s, c.seed)
	m, err := newTranscriptMachine(t, tr)
	if err != nil {
		t.Fatal(err)
	}
	g := &generator{transcriptMachine: m, pending: map[string][]int{}, epochs: map[uint64]bool{}}
	I, R := sideInitiator, sideResponder

	g.step(R, "start", nil, nil, "")
	g.step(I, "start", nil, nil, "HelloKeyRequest")
	g.deliver(I, "HelloKeyAnswer")
	g.deliver(R, "SealedHello (ClientHello)")
	g.deliver(I, "SealedAnswer (ServerHello)")
	g.deliver(R, "")
	g.quiet()
	g.packetEachWay("epoch 1")

	g.step(I, "update", nil, nil, "ConnectionUpdate")
	g.deliver(I, "EpochKeyUpdate (the responder's switch to epoch 2)")
	if c.mode == Stream {
		g.deliver(R, "EpochKeyUpdate (the initiator's switch to epoch 2)")
	} else {
		// Datagram records carry their epoch: the committer's switch
		// shows in an empty application record under the new keys,
		// which ends the responder's hold (protocol.md 7.7.2).
		g.deliver(R, "keepalive (the initiator's switch to epoch 2)")
	}
	g.deliver(I, "")
	g.quiet()
	g.packetEachWay("epoch 2")

	if c.mode == Stream {
		// A new TCP connection: both ends are restored sessions.
		g.step(R, "restart", nil, nil, "")
	}
	g.step(I, "restart", nil, nil, "SealedHello (ResumptionRequest)")
	g.deliver(I, "SealedAnswer (ResumptionResponse)")
	g.deliver(R, "")
	g.quiet()
	g.packetEachWay("after resumption")
	return tr
}

func (g *generator) packetEachWay(when string) {
	g.t.Helper()
	for _, side := range []string{sideInitiator, sideResponder} {
		pkt := []byte(fmt.Sprintf("\x45 test packet from the %s, %s", side, when))
		g.step(side, "send_packet", nil, pkt, "application record, "+when)
		g.deliver(side, "")
	}
}

// transcriptTestKeys makes both sides' signature keys and the responder's
// hello key from the case's seed.
func transcriptTestKeys(t *testing.T, s *mls.CipherSuite, seed uint64) transcriptKeys {
	cryptotest.SetGlobalRandom(t, seed)
	ipriv, ipub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	rpriv, rpub, err := s.GenerateSignatureKeyPair()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := NewHelloKey(s.ID, rpriv, transcriptStart, transcriptStart.Add(transcriptKeyLifetime))
	if err != nil {
		t.Fatal(err)
	}
	pairBytes, err := pair.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := pair.Public.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return transcriptKeys{
		Warning:                   "TEST KEYS ONLY: published private keys, never use them outside tests",
		InitiatorSignaturePrivate: ipriv, InitiatorSignaturePublic: ipub,
		ResponderSignaturePrivate: rpriv, ResponderSignaturePublic: rpub,
		ResponderHelloKeyPair: pairBytes, ResponderHelloKey: pub,
	}
}

// TestTranscriptsRegenerate regenerates the published transcripts and
// compares them with the files byte for byte; -update-transcripts
// rewrites the files instead.
func TestTranscriptsRegenerate(t *testing.T) {
	for _, c := range transcriptCases {
		t.Run(c.name(), func(t *testing.T) {
			tr := generateTranscript(t, c)
			if *updateTranscripts {
				b, err := encodeTranscript(tr)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(transcriptDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(c.path(), b, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := readTranscript(c.path())
			if err != nil {
				t.Fatalf("%v (run with -update-transcripts to create it)", err)
			}
			if err := compareTranscripts(tr, want); err != nil {
				t.Fatalf("%s: %v", c.path(), err)
			}
		})
	}
}

// compareTranscripts names the first message or step that differs, then
// compares the whole encodings (all but the Go version).
func compareTranscripts(got, want *transcript) error {
	for i := range min(len(got.Messages), len(want.Messages)) {
		g, w := got.Messages[i], want.Messages[i]
		if g.From != w.From || g.Label != w.Label || !bytes.Equal(g.Bytes, w.Bytes) {
			return fmt.Errorf("message %d (%s from the %s) differs: got %s from the %s, %d bytes, want %d bytes",
				i, w.Label, w.From, g.Label, g.From, len(g.Bytes), len(w.Bytes))
		}
	}
	if len(got.Messages) != len(want.Messages) {
		return fmt.Errorf("%d messages, the file has %d", len(got.Messages), len(want.Messages))
	}
	g := *got
	g.GoVersion = want.GoVersion
	gb, err := encodeTranscript(&g)
	if err != nil {
		return err
	}
	wb, err := encodeTranscript(want)
	if err != nil {
		return err
	}
	if !bytes.Equal(gb, wb) {
		return fmt.Errorf("messages agree but the file differs from the regenerated one at byte %d", firstDiff(gb, wb))
	}
	return nil
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
