package record

import (
	"bytes"
	"crypto"
	"testing"
	"time"
)

var testSuites = []struct {
	name  string
	suite Suite
}{
	{"AES128GCM", Suite{AES128GCM, crypto.SHA256}},
	{"AES256GCM", Suite{AES256GCM, crypto.SHA384}},
	{"ChaCha20Poly1305", Suite{ChaCha20Poly1305, crypto.SHA256}},
}

// testSecret is a deterministic traffic secret for epoch and direction.
func testSecret(s Suite, epoch uint64, dir byte) []byte {
	b := make([]byte, s.Hash.Size())
	for i := range b {
		b[i] = byte(i) ^ byte(epoch>>(8*(i%8))) ^ dir
	}
	return b
}

// keyPair returns two independent TrafficKeys of the same secret: one for a
// sender, one for the matching receiver (a key may be installed only once).
func keyPair(t testing.TB, s Suite, epoch uint64, dir byte) (a, b *TrafficKeys) {
	t.Helper()
	a, err := NewTrafficKeys(s, epoch, testSecret(s, epoch, dir))
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewTrafficKeys(s, epoch, testSecret(s, epoch, dir))
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// datagramPair returns a sender and a receiver sharing epoch's keys.
func datagramPair(t testing.TB, s Suite, epoch uint64, index uint32, cfg Config) (*DatagramSender, *DatagramReceiver) {
	t.Helper()
	sk, rk := keyPair(t, s, epoch, 'd')
	snd := NewDatagramSender(index, cfg)
	rcv := NewDatagramReceiver(index, cfg)
	if err := snd.SetKeys(sk); err != nil {
		t.Fatal(err)
	}
	if err := rcv.SetKeys(rk); err != nil {
		t.Fatal(err)
	}
	return snd, rcv
}

// advance installs epoch's keys on both sides.
func advance(t testing.TB, s Suite, snd *DatagramSender, rcv *DatagramReceiver, epoch uint64) {
	t.Helper()
	sk, rk := keyPair(t, s, epoch, 'd')
	if err := snd.SetKeys(sk); err != nil {
		t.Fatal(err)
	}
	if err := rcv.SetKeys(rk); err != nil {
		t.Fatal(err)
	}
}

func seal(t testing.TB, s *DatagramSender, payload []byte) []byte {
	t.Helper()
	d, err := s.Seal(nil, ContentApplicationData, payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// open opens a copy, so the caller's datagram stays reusable.
func open(r *DatagramReceiver, d []byte, now time.Duration) ([]byte, error) {
	_, p, err := r.Open(bytes.Clone(d), now)
	return p, err
}

func mustOpen(t testing.TB, r *DatagramReceiver, d []byte, now time.Duration, want []byte) {
	t.Helper()
	p, err := open(r, d, now)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if !bytes.Equal(p, want) {
		t.Fatalf("Open = %x, want %x", p, want)
	}
}

func mustReject(t testing.TB, r *DatagramReceiver, d []byte, now time.Duration, want error) {
	t.Helper()
	before := snapshot(r)
	if _, err := open(r, d, now); err != want {
		t.Fatalf("Open error = %v, want %v", err, want)
	}
	if after := snapshot(r); !after.equal(before) {
		t.Fatalf("rejected datagram changed the receiver's windows")
	}
}

// recvSnapshot captures the replay state of both epochs.
type recvSnapshot struct {
	windows  [2]windowSnapshot
	accepted [2]uint64
	live     [2]bool
	grace    bool
}

func snapshot(r *DatagramReceiver) recvSnapshot {
	var s recvSnapshot
	for i := range r.slots {
		s.windows[i] = snapshotWindow(&r.slots[i].window)
		s.accepted[i] = r.slots[i].accepted
		s.live[i] = r.slots[i].live()
	}
	s.grace = r.graceOn
	return s
}

func (a recvSnapshot) equal(b recvSnapshot) bool { return a == b }

// windowSnapshot is a replay window by value: the ring itself, not the
// pointer to it, so that a change to the ring shows.
type windowSnapshot struct {
	top       uint64
	allocated bool
	bits      [windowWords]uint64
}

func snapshotWindow(w *replayWindow) windowSnapshot {
	s := windowSnapshot{top: w.top, allocated: w.bits != nil}
	if w.bits != nil {
		s.bits = *w.bits
	}
	return s
}
