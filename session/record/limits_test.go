package record

import (
	"crypto"
	"math"
	"testing"
)

func TestRecordLimits(t *testing.T) {
	if want := uint64(math.Floor(math.Pow(2, 24.5))); AES128GCM.RecordLimit() != want || AES256GCM.RecordLimit() != want {
		t.Fatalf("AES-GCM limit %d, want floor(2^24.5) = %d", AES128GCM.RecordLimit(), want)
	}
	if ChaCha20Poly1305.RecordLimit() != 1<<62 {
		t.Fatal("ChaCha20-Poly1305 limit")
	}
}

// A sender whose counter starts near each limit: RekeyNeeded from
// RekeyAfter on, the last permitted record sealed, then ErrKeyExhausted and
// the key wiped.
func TestSendLimits(t *testing.T) {
	type sender interface {
		seal() error
		usage() *sendUsage
		keysHeld() *TrafficKeys
		RekeyNeeded() bool
	}
	for _, tc := range testSuites {
		for _, kind := range []string{"datagram", "stream"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				var s sender
				if kind == "datagram" {
					snd, _ := datagramPair(t, tc.suite, 1, 1, Config{})
					s = dgSender{snd}
				} else {
					w, _ := streamPair(t, tc.suite, 1)
					s = stSender{w}
				}
				limit := tc.suite.AEAD.RecordLimit()
				u := s.usage()
				if s.RekeyNeeded() {
					t.Fatal("fresh keys need a rekey")
				}
				u.seq = DefaultRekeyAfter - 1
				if s.RekeyNeeded() {
					t.Fatal("rekey requested early")
				}
				if err := s.seal(); err != nil {
					t.Fatal(err)
				}
				if !s.RekeyNeeded() {
					t.Fatalf("no rekey request at %d records", u.seq)
				}
				u.seq = limit - 2
				for i := 0; i < 2; i++ {
					if err := s.seal(); err != nil {
						t.Fatalf("record %d of %d: %v", u.seq, limit, err)
					}
				}
				keys := s.keysHeld()
				if keys != nil {
					t.Fatal("exhausted keys still held")
				}
				if err := s.seal(); err != ErrKeyExhausted {
					t.Fatalf("past the limit: %v", err)
				}
				if u.seq != limit {
					t.Fatalf("sealed %d records, limit %d", u.seq, limit)
				}
			})
		}
	}
}

type dgSender struct{ *DatagramSender }

func (d dgSender) seal() error {
	_, err := d.Seal(nil, ContentApplicationData, []byte("p"), 0)
	return err
}
func (d dgSender) usage() *sendUsage      { return &d.use }
func (d dgSender) keysHeld() *TrafficKeys { return d.keys }

type stSender struct{ *StreamWriter }

func (s stSender) seal() error {
	_, err := s.SealRecord(nil, ContentApplicationData, []byte("p"), 0)
	return err
}
func (s stSender) usage() *sendUsage      { return &s.use }
func (s stSender) keysHeld() *TrafficKeys { return s.keys }

func TestRekeyAfterConfig(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	snd, _ := datagramPair(t, s, 1, 1, Config{RekeyAfter: 3})
	for i := 0; i < 3; i++ {
		if snd.RekeyNeeded() {
			t.Fatalf("rekey at %d", i)
		}
		seal(t, snd, nil)
	}
	if !snd.RekeyNeeded() {
		t.Fatal("no rekey after 3")
	}
	// A soft limit above the hard one is lowered to it.
	w := NewStreamWriter(Config{RekeyAfter: math.MaxUint64})
	k, _ := keyPair(t, s, 1, 0)
	if err := w.SetKeys(k); err != nil {
		t.Fatal(err)
	}
	w.use.seq = aesGCMRecordLimit - 1
	if w.RekeyNeeded() {
		t.Fatal("rekey request below the configured limit")
	}
	if _, err := w.SealRecord(nil, ContentApplicationData, nil, 0); err != nil {
		t.Fatal(err)
	}
	if !w.RekeyNeeded() {
		t.Fatal("exhausted keys do not ask for a rekey")
	}
}

// A new epoch lifts the limits: fresh counter, fresh budget.
func TestLimitLiftedByNewEpoch(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 1, 1, Config{})
	snd.use.seq = aesGCMRecordLimit
	if _, err := snd.Seal(nil, ContentApplicationData, nil, 0); err != ErrKeyExhausted {
		t.Fatal(err)
	}
	advance(t, s, snd, rcv, 2)
	if snd.RekeyNeeded() || snd.Sequence() != 0 {
		t.Fatal("new epoch did not reset usage")
	}
	mustOpen(t, rcv, seal(t, snd, []byte("ok")), 0, []byte("ok"))
}

// Forged datagrams are counted per key (RFC 9147 section 4.5.3): RekeyNeeded
// at half the limit, keys retired at the limit.
func TestForgeryLimit(t *testing.T) {
	s := Suite{ChaCha20Poly1305, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 1, 1, Config{})
	good := seal(t, snd, []byte("good"))
	forged := append([]byte(nil), good...)
	forged[len(forged)-1] ^= 1

	rcv.slots[rcv.cur].failures = forgeryRekeyHint - 1
	if rcv.RekeyNeeded() {
		t.Fatal("early")
	}
	mustReject(t, rcv, forged, 0, ErrBadRecordMAC)
	if !rcv.RekeyNeeded() {
		t.Fatal("no rekey request at half the forgery limit")
	}
	rcv.slots[rcv.cur].failures = forgeryLimit - 1
	if _, err := open(rcv, forged, 0); err != ErrBadRecordMAC {
		t.Fatal(err)
	}
	if _, err := open(rcv, good, 0); err != ErrKeyExhausted {
		t.Fatalf("after the forgery limit: %v", err)
	}
	advance(t, s, snd, rcv, 2)
	mustOpen(t, rcv, seal(t, snd, []byte("x")), 0, []byte("x"))
}

// Receivers refuse sequence numbers no sender may use.
func TestReceiveSequenceLimit(t *testing.T) {
	s := Suite{ChaCha20Poly1305, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 1, 1, Config{})
	snd.use.seq = MaxRecords - 1
	last := seal(t, snd, []byte("last"))
	mustOpen(t, rcv, last, 0, []byte("last"))
	bad := append([]byte(nil), last...)
	bad[offSeq] = 0x40
	mustReject(t, rcv, bad, 0, ErrMalformed)

	w, r := streamPair(t, s, 1)
	w.use.seq = MaxRecords - 1
	r.seq = MaxRecords - 1
	rec, err := w.SealRecord(nil, ContentApplicationData, []byte("z"), 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Feed(rec)
	if _, c, err := r.Next(); err != nil || string(c) != "z" {
		t.Fatal(err)
	}
	r.Feed(rec)
	if _, _, err := r.Next(); err != ErrKeyExhausted {
		t.Fatalf("stream past 2^62: %v", err)
	}
}
