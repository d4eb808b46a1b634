package record_test

import (
	"bytes"
	"testing"

	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/session/record"
)

// recordSuite is the mapping the session layer performs: an MLS cipher suite
// onto the record layer's description of it.
func recordSuite(t *testing.T, cs *mls.CipherSuite) record.Suite {
	t.Helper()
	a, ok := record.AEADFromHPKE(cs.AEADID)
	if !ok {
		t.Fatalf("%v: AEAD %#04x", cs, cs.AEADID)
	}
	return record.Suite{AEAD: a, Hash: cs.Hash}
}

func epochSecrets(t *testing.T, cs *mls.CipherSuite, epoch uint64, seed byte) *mls.EpochSecrets {
	t.Helper()
	gc := &mls.GroupContext{
		Version:     mls.ProtocolMLS10,
		CipherSuite: cs.ID,
		GroupID:     []byte("tunnel"),
		Epoch:       epoch,
		TreeHash:    make([]byte, cs.Nh()),
	}
	e, err := cs.NewEpochSecrets(bytes.Repeat([]byte{seed}, cs.Nh()), nil, gc)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Two peers holding the same MLS epoch derive matching keys from the real
// exporter and talk over both framings, through an epoch change.
func TestWithMLSEpochSecrets(t *testing.T) {
	for _, cs := range mls.Suites() {
		t.Run(cs.Name, func(t *testing.T) {
			s := recordSuite(t, cs)
			const iIndex, rIndex = 0x1111, 0x2222

			iSend := record.NewDatagramSender(rIndex, record.Config{})
			rRecv := record.NewDatagramReceiver(rIndex, record.Config{})
			rSend := record.NewDatagramSender(iIndex, record.Config{})
			iRecv := record.NewDatagramReceiver(iIndex, record.Config{})
			install := func(epoch uint64, seed byte) {
				// Each peer holds its own copy of the epoch, as two
				// processes would.
				for _, role := range []record.Role{record.Initiator, record.Responder} {
					send, recv, err := record.DeriveEpochKeys(s, epochSecrets(t, cs, epoch, seed), epoch, role)
					if err != nil {
						t.Fatal(err)
					}
					snd, rcv := iSend, iRecv
					if role == record.Responder {
						snd, rcv = rSend, rRecv
					}
					if err := snd.SetKeys(send); err != nil {
						t.Fatal(err)
					}
					if err := rcv.SetKeys(recv); err != nil {
						t.Fatal(err)
					}
				}
			}
			exchange := func(msg string) {
				for _, p := range []struct {
					snd *record.DatagramSender
					rcv *record.DatagramReceiver
				}{{iSend, rRecv}, {rSend, iRecv}} {
					d, err := p.snd.Seal(nil, record.ContentApplicationData, []byte(msg), 0)
					if err != nil {
						t.Fatal(err)
					}
					if _, got, err := p.rcv.Open(d, 0); err != nil || string(got) != msg {
						t.Fatalf("%q: %v", msg, err)
					}
				}
			}
			install(4, 1)
			exchange("epoch 4")
			install(5, 2)
			exchange("epoch 5")

			// Stream framing from the same kind of export.
			iKeys, _, err := record.DeriveEpochKeys(s, epochSecrets(t, cs, 4, 1), 4, record.Initiator)
			if err != nil {
				t.Fatal(err)
			}
			_, rKeys, err := record.DeriveEpochKeys(s, epochSecrets(t, cs, 4, 1), 4, record.Responder)
			if err != nil {
				t.Fatal(err)
			}
			w, r := record.NewStreamWriter(record.Config{}), record.NewStreamReader()
			if err := w.SetKeys(iKeys); err != nil {
				t.Fatal(err)
			}
			if err := r.SetKeys(rKeys); err != nil {
				t.Fatal(err)
			}
			rec, err := w.SealRecord(nil, record.ContentHandshake, []byte("ConnectionUpdate"), 0)
			if err != nil {
				t.Fatal(err)
			}
			r.Feed(rec)
			if ct, got, err := r.Next(); err != nil || ct != record.ContentHandshake || string(got) != "ConnectionUpdate" {
				t.Fatalf("stream: %v", err)
			}

			// The two directions have different keys: a record reflected
			// back at the initiator does not open with its receive keys.
			_, iRecvKeys, err := record.DeriveEpochKeys(s, epochSecrets(t, cs, 4, 1), 4, record.Initiator)
			if err != nil {
				t.Fatal(err)
			}
			back := record.NewStreamReader()
			if err := back.SetKeys(iRecvKeys); err != nil {
				t.Fatal(err)
			}
			back.Feed(rec)
			if _, _, err := back.Next(); err != record.ErrBadRecordMAC {
				t.Fatalf("reflected record: %v", err)
			}
		})
	}
}
