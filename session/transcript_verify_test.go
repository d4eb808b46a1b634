package session

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/current-vpn/current/session/record"
)

// verifySide runs one side of a published transcript alone: a state
// machine built from the file's keys, fed the other side's recorded
// messages at the recorded times and seeds. The other side is never run.
// The side must accept every message, emit exactly its recorded messages,
// report the recorded events, open the recorded packets and derive the
// listed record keys.
func verifySide(t *testing.T, tr *transcript, side string) error {
	m, err := newTranscriptMachine(t, tr)
	if err != nil {
		return err
	}
	epochs := map[uint64]epochKeys{}
	for _, k := range tr.Epochs {
		epochs[k.Epoch] = k
	}
	for i, msg := range tr.Messages {
		if msg.Index != i || msg.Step < 0 || msg.Step >= len(tr.Steps) {
			return fmt.Errorf("message %d: index %d, step %d", i, msg.Index, msg.Step)
		}
	}
	fed := 0
	for i := range tr.Steps {
		st := tr.Steps[i]
		if st.Side != side {
			continue
		}
		var in []byte
		if st.Action == "receive" {
			if st.Input == nil || *st.Input < 0 || *st.Input >= len(tr.Messages) {
				return fmt.Errorf("step %d: no valid input", st.Index)
			}
			msg := tr.Messages[*st.Input]
			if msg.From != other(side) || msg.ReceivedIn != st.Index {
				return fmt.Errorf("step %d: message %d is from the %s, received in step %d", st.Index, msg.Index, msg.From, msg.ReceivedIn)
			}
			in = msg.Bytes
			fed++
		}
		r, err := m.perform(&st, in)
		if err != nil {
			return fmt.Errorf("%s refused it: %w", stepName(tr, &st), err)
		}
		if err := checkStep(tr, &st, r, epochs); err != nil {
			return fmt.Errorf("%s: %w", stepName(tr, &st), err)
		}
	}
	want := 0
	for _, msg := range tr.Messages {
		if msg.From == other(side) {
			want++
		}
	}
	if fed != want {
		return fmt.Errorf("the %s received %d of the %d messages sent to it", side, fed, want)
	}
	return nil
}

func stepName(tr *transcript, st *transcriptStep) string {
	if st.Input != nil {
		msg := tr.Messages[*st.Input]
		return fmt.Sprintf("step %d: the %s receiving message %d (%s)", st.Index, st.Side, msg.Index, msg.Label)
	}
	return fmt.Sprintf("step %d: the %s's %s", st.Index, st.Side, st.Action)
}

// checkStep compares what a step produced with what the file lists.
func checkStep(tr *transcript, st *transcriptStep, r *stepResult, epochs map[uint64]epochKeys) error {
	var want []hexBytes
	for _, idx := range st.Output {
		if idx < 0 || idx >= len(tr.Messages) {
			return fmt.Errorf("output index %d out of range", idx)
		}
		want = append(want, tr.Messages[idx].Bytes)
	}
	if !sameBytes(r.out, want) {
		return fmt.Errorf("emitted %d messages that differ from the %d recorded (%v)", len(r.out), len(want), st.Output)
	}
	if !slices.Equal(r.events, st.Events) {
		return fmt.Errorf("events %q, want %q", r.events, st.Events)
	}
	if !sameBytes(r.packets, st.Packets) {
		return fmt.Errorf("opened packets %q, want %q", r.packets, st.Packets)
	}
	if r.epoch != st.Epoch {
		return fmt.Errorf("at epoch %d, want %d", r.epoch, st.Epoch)
	}
	if r.keys != nil {
		k, ok := epochs[r.keys.Epoch]
		if !ok {
			return fmt.Errorf("epoch %d is not listed", r.keys.Epoch)
		}
		if !sameEpochKeys(*r.keys, k) {
			return fmt.Errorf("derived record keys of epoch %d differ from the listed ones", k.Epoch)
		}
	}
	if (r.keyPackage == nil) != (st.KeyPackage == nil) || r.keyPackage != nil &&
		(!bytes.Equal(r.keyPackage.InitPrivate, st.KeyPackage.InitPrivate) || !bytes.Equal(r.keyPackage.EncryptionPrivate, st.KeyPackage.EncryptionPrivate)) {
		return fmt.Errorf("KeyPackage secrets differ from the listed ones")
	}
	if (r.sealed == nil) != (st.Sealed == nil) || r.sealed != nil && (r.sealed.Timestamp != st.Sealed.Timestamp ||
		!bytes.Equal(r.sealed.Inner, st.Sealed.Inner) || !bytes.Equal(r.sealed.AnswerKey, st.Sealed.AnswerKey)) {
		return fmt.Errorf("sealed hello secrets differ from the listed ones")
	}
	return nil
}

func sameEpochKeys(a, b epochKeys) bool {
	return a.Epoch == b.Epoch && bytes.Equal(a.ExporterSecret, b.ExporterSecret) && bytes.Equal(a.EpochAuthenticator, b.EpochAuthenticator) &&
		bytes.Equal(a.ClientTrafficSecret, b.ClientTrafficSecret) && bytes.Equal(a.ClientKey, b.ClientKey) && bytes.Equal(a.ClientIV, b.ClientIV) &&
		bytes.Equal(a.ServerTrafficSecret, b.ServerTrafficSecret) && bytes.Equal(a.ServerKey, b.ServerKey) && bytes.Equal(a.ServerIV, b.ServerIV)
}

// TestTranscriptsVerify checks every published transcript through each
// receiving side in turn.
func TestTranscriptsVerify(t *testing.T) {
	for _, c := range transcriptCases {
		t.Run(c.name(), func(t *testing.T) {
			tr, err := readTranscript(c.path())
			if err != nil {
				t.Fatal(err)
			}
			if tr.Suite != fmt.Sprintf("%#04x", uint16(c.suite)) || tr.Mode != modeName(c.mode) {
				t.Fatalf("file is for suite %s in %s mode", tr.Suite, tr.Mode)
			}
			for _, side := range []string{sideInitiator, sideResponder} {
				if err := verifySide(t, tr, side); err != nil {
					t.Errorf("%s side: %v", side, err)
				}
			}
			if err := checkRecordsWithListedKeys(tr); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestTranscriptsVerifyWrongClaims changes what the file says a receiver
// derives (a record key, an opened packet, an event) and expects the
// verification to notice.
func TestTranscriptsVerifyWrongClaims(t *testing.T) {
	c := transcriptCases[0]
	for _, tc := range []struct {
		name, side, want string
		change           func(tr *transcript)
	}{
		{"record key", sideResponder, "record keys of epoch 2", func(tr *transcript) { tr.Epochs[1].ServerKey[0] ^= 1 }},
		{"record IV", sideInitiator, "record keys of epoch 1", func(tr *transcript) { tr.Epochs[0].ClientIV[11] ^= 1 }},
		{"opened packet", sideResponder, "opened packets", func(tr *transcript) {
			for i := range tr.Steps {
				if len(tr.Steps[i].Packets) > 0 {
					tr.Steps[i].Packets[0][0] ^= 1
					return
				}
			}
		}},
		{"event", sideInitiator, "events", func(tr *transcript) {
			for i := range tr.Steps {
				if tr.Steps[i].Side == sideInitiator && len(tr.Steps[i].Events) > 0 {
					tr.Steps[i].Events[0] = "established epoch 7"
					return
				}
			}
		}},
		{"answer key", sideInitiator, "sealed hello secrets", func(tr *transcript) {
			for i := range tr.Steps {
				if s := tr.Steps[i].Sealed; s != nil {
					s.AnswerKey[0] ^= 1
					return
				}
			}
		}},
	} {
		tr, err := readTranscript(c.path())
		if err != nil {
			t.Fatal(err)
		}
		tc.change(tr)
		err = verifySide(t, tr, tc.side)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("a wrong %s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

// TestTranscriptsVerifyTampered flips one byte of one recorded message at
// a time and expects the receiving side to fail on that very message.
func TestTranscriptsVerifyTampered(t *testing.T) {
	c := transcriptCases[1] // 0x0001 in datagram mode, where a bad datagram is dropped quietly
	tr, err := readTranscript(c.path())
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"SealedHello (ClientHello)", "SealedAnswer (ServerHello)", "ConnectionUpdate", "application record, epoch 2"} {
		for _, msg := range tr.Messages {
			if msg.Label != label {
				continue
			}
			for _, at := range []int{0, len(msg.Bytes) / 2, len(msg.Bytes) - 1} {
				bad := *tr
				bad.Messages = slices.Clone(tr.Messages)
				b := bytes.Clone(msg.Bytes)
				b[at] ^= 0x01
				bad.Messages[msg.Index].Bytes = b
				err := verifySide(t, &bad, other(msg.From))
				if err == nil {
					t.Errorf("message %d (%s) with byte %d flipped was accepted", msg.Index, label, at)
					continue
				}
				if want := fmt.Sprintf("message %d (", msg.Index); !strings.Contains(err.Error(), want) {
					t.Errorf("message %d (%s) byte %d flipped: failed elsewhere: %v", msg.Index, label, at, err)
				}
			}
		}
	}
}

// checkRecordsWithListedKeys opens every application record of tr with
// AES-GCM keyed directly from the listed write key and IV, outside the
// state machine, as an outside implementation would: the additional data
// is the record header, the nonce the IV XOR the sequence number, the
// plaintext TLSInnerPlaintext (packet, content type 23, no padding here).
// In stream mode the sequence number is implicit; every application record
// of these transcripts is the first its sender protects under its epoch's
// keys, so it is 0. Datagram records carry theirs.
func checkRecordsWithListedKeys(tr *transcript) error {
	epochs := map[uint64]epochKeys{}
	for _, k := range tr.Epochs {
		epochs[k.Epoch] = k
	}
	checked := 0
	for _, msg := range tr.Messages {
		if msg.Step < 0 || msg.Step >= len(tr.Steps) {
			return fmt.Errorf("message %d: step %d out of range", msg.Index, msg.Step)
		}
		st := tr.Steps[msg.Step]
		if st.Action != "send_packet" {
			continue
		}
		k, ok := epochs[st.Epoch]
		if !ok {
			return fmt.Errorf("message %d: epoch %d is not listed", msg.Index, st.Epoch)
		}
		key, iv := k.ClientKey, k.ClientIV
		if msg.From == sideResponder {
			key, iv = k.ServerKey, k.ServerIV
		}
		hdr, seq := record.StreamHeaderLen, uint64(0)
		if tr.Mode == modeName(Datagram) {
			hdr = record.DatagramHeaderLen
			if len(msg.Bytes) < hdr {
				return fmt.Errorf("message %d: short datagram", msg.Index)
			}
			seq = binary.BigEndian.Uint64(msg.Bytes[7:15])
		}
		inner, err := openListed(key, iv, seq, msg.Bytes, hdr)
		if err != nil {
			return fmt.Errorf("message %d (%s) does not open with the listed keys of epoch %d: %v", msg.Index, msg.Label, k.Epoch, err)
		}
		want := append(bytes.Clone(st.Plaintext), byte(record.ContentApplicationData))
		if !bytes.Equal(inner, want) {
			return fmt.Errorf("message %d (%s): inner plaintext %x, want %x", msg.Index, msg.Label, inner, want)
		}
		checked++
	}
	if checked != 6 {
		return fmt.Errorf("checked %d application records, the scenario has 6", checked)
	}
	return nil
}

func openListed(key, iv []byte, seq uint64, rec []byte, hdr int) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(iv) != gcm.NonceSize() || len(rec) < hdr {
		return nil, fmt.Errorf("bad IV or record length")
	}
	nonce := bytes.Clone(iv)
	for i := range 8 {
		nonce[len(nonce)-1-i] ^= byte(seq >> (8 * i))
	}
	return gcm.Open(nil, nonce, rec[hdr:], rec[:hdr])
}
