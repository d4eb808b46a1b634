package record

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"testing"
	"time"
)

// The datagram layout, checked by opening the layer's output by hand with
// crypto/cipher: header fields at their offsets, the header as additional
// data, the TLS 1.3 nonce, TLSInnerPlaintext inside.
func TestDatagramFormat(t *testing.T) {
	for _, tc := range testSuites {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.suite
			const epoch, index = 0x1234_5678_9abc, 0xdeadbeef
			snd, _ := datagramPair(t, s, epoch, index, Config{})
			secret := testSecret(s, epoch, 'd')
			key := refExpandLabel(s.Hash, secret, "key", nil, refKeyLen(s.AEAD))
			iv := refExpandLabel(s.Hash, secret, "iv", nil, 12)
			aead := refAEAD(t, s.AEAD, key)
			for seq := uint64(0); seq < 3; seq++ {
				payload := bytes.Repeat([]byte{byte(seq)}, 100)
				d, err := snd.Seal(nil, ContentApplicationData, payload, int(seq))
				if err != nil {
					t.Fatal(err)
				}
				if len(d) != len(payload)+DatagramOverhead+int(seq) || DatagramOverhead != 32 {
					t.Fatalf("length %d", len(d))
				}
				wantHdr := []byte{0x80, 0x9a, 0xbc, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, byte(seq)}
				if !bytes.Equal(d[:15], wantHdr) {
					t.Fatalf("header %x, want %x", d[:15], wantHdr)
				}
				inner, err := aead.Open(nil, refNonce(iv, seq), d[15:], d[:15])
				if err != nil {
					t.Fatal(err)
				}
				want := append(bytes.Clone(payload), 23)
				want = append(want, make([]byte, seq)...)
				if !bytes.Equal(inner, want) {
					t.Fatalf("inner plaintext %x", inner)
				}
			}
		})
	}
}

// A datagram built by hand opens.
func TestDatagramByHand(t *testing.T) {
	s := Suite{AES256GCM, crypto.SHA384}
	_, rcv := datagramPair(t, s, 7, 42, Config{})
	secret := testSecret(s, 7, 'd')
	key := refExpandLabel(s.Hash, secret, "key", nil, 32)
	iv := refExpandLabel(s.Hash, secret, "iv", nil, 12)
	hdr := []byte{0x80, 0, 7, 0, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0x01, 0x00}
	d := refAEAD(t, s.AEAD, key).Seal(bytes.Clone(hdr), refNonce(iv, 256), []byte("handshake\x16\x00\x00"), hdr)
	ct, p, err := rcv.Open(d, 0)
	if err != nil || ct != ContentHandshake || string(p) != "handshake" {
		t.Fatalf("%v %v %q", err, ct, p)
	}
}

func TestDatagramSealInPlace(t *testing.T) {
	snd, rcv := datagramPair(t, Suite{ChaCha20Poly1305, crypto.SHA256}, 1, 1, Config{})
	buf := make([]byte, 2048)
	payload := buf[DatagramHeaderLen : DatagramHeaderLen+1400]
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	want := bytes.Clone(payload)
	d, err := snd.Seal(buf[:0], ContentApplicationData, payload, 0)
	if err != nil || &d[0] != &buf[0] {
		t.Fatal("not sealed in place")
	}
	_, p, err := rcv.Open(d, 0)
	if err != nil || !bytes.Equal(p, want) || &p[0] != &buf[DatagramHeaderLen] {
		t.Fatal("not opened in place")
	}
}

func TestDatagramReplay(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 1, 9, Config{})
	var ds [][]byte
	for i := 0; i < ReplayWindow+10; i++ {
		ds = append(ds, seal(t, snd, []byte{byte(i)}))
	}
	mustOpen(t, rcv, ds[0], 0, []byte{0})
	mustReject(t, rcv, ds[0], 0, ErrReplay) // duplicate

	// Reordering inside the window: 5, 3, 4, 1, 2 all accepted once.
	for _, i := range []int{5, 3, 4, 1, 2} {
		mustOpen(t, rcv, ds[i], 0, []byte{byte(i)})
	}
	for _, i := range []int{1, 2, 3, 4, 5} {
		mustReject(t, rcv, ds[i], 0, ErrReplay)
	}

	// The window edge: with top = ReplayWindow+9, sequence number 10 is the
	// oldest still accepted and 9 is too old.
	top := ReplayWindow + 9
	mustOpen(t, rcv, ds[top], 0, []byte{byte(top)})
	mustOpen(t, rcv, ds[10], 0, []byte{10})
	mustReject(t, rcv, ds[9], 0, ErrTooOld)
	mustReject(t, rcv, ds[6], 0, ErrTooOld) // never seen, but far past

	// Far future: a forgery with a huge sequence number changes nothing; an
	// authentic one moves the window and leaves everything before it old.
	forged := bytes.Clone(ds[11])
	binary.BigEndian.PutUint64(forged[offSeq:], 20_000_000)
	mustReject(t, rcv, forged, 0, ErrBadRecordMAC)
	mustOpen(t, rcv, ds[11], 0, []byte{11})
	snd.use.seq = 20_000_000
	far := seal(t, snd, []byte("far"))
	mustOpen(t, rcv, far, 0, []byte("far"))
	mustReject(t, rcv, far, 0, ErrReplay)
	mustReject(t, rcv, ds[12], 0, ErrTooOld)
}

// Every header field and the body tampered with: rejected, window unchanged,
// and the genuine datagram is still accepted afterwards.
func TestDatagramTampered(t *testing.T) {
	s := Suite{AES256GCM, crypto.SHA384}
	snd, rcv := datagramPair(t, s, 300, 77, Config{})
	mustOpen(t, rcv, seal(t, snd, []byte("warm up")), 0, []byte("warm up"))
	d := seal(t, snd, []byte("genuine payload"))
	cases := []struct {
		name string
		mut  func([]byte) []byte
		want error
	}{
		{"type to control", func(b []byte) []byte { b[0] = 0x01; return b }, ErrMalformed},
		{"type reserved", func(b []byte) []byte { b[0] = 0x81; return b }, ErrMalformed},
		{"epoch", func(b []byte) []byte { b[offEpoch+1] ^= 1; return b }, ErrUnknownEpoch},
		{"index", func(b []byte) []byte { b[offIndex+3] ^= 1; return b }, ErrUnknownReceiver},
		{"sequence number", func(b []byte) []byte { b[offSeq+7] ^= 4; return b }, ErrBadRecordMAC},
		{"sequence number top bits", func(b []byte) []byte { b[offSeq] |= 0x40; return b }, ErrMalformed},
		{"ciphertext", func(b []byte) []byte { b[20] ^= 0x80; return b }, ErrBadRecordMAC},
		{"tag", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrBadRecordMAC},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrBadRecordMAC},
		{"extended", func(b []byte) []byte { return append(b, 0) }, ErrBadRecordMAC},
		{"header only", func(b []byte) []byte { return b[:DatagramHeaderLen+TagLen] }, ErrMalformed},
		{"oversized", func(b []byte) []byte { return append(b, make([]byte, MaxDatagramLen)...) }, ErrRecordOverflow},
	}
	for _, c := range cases {
		mustReject(t, rcv, c.mut(bytes.Clone(d)), 0, c.want)
	}
	mustOpen(t, rcv, d, 0, []byte("genuine payload"))
}

// Datagrams reordered across an epoch change still open during the grace
// period, each epoch with its own window.
func TestDatagramAcrossEpochChange(t *testing.T) {
	s := Suite{ChaCha20Poly1305, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 5, 1, Config{})
	old1, old2, old3 := seal(t, snd, []byte("o1")), seal(t, snd, []byte("o2")), seal(t, snd, []byte("o3"))
	mustOpen(t, rcv, old1, 0, []byte("o1"))
	advance(t, s, snd, rcv, 6)
	new1, new2 := seal(t, snd, []byte("n1")), seal(t, snd, []byte("n2"))

	mustOpen(t, rcv, new2, time.Second, []byte("n2"))
	mustOpen(t, rcv, old3, 2*time.Second, []byte("o3")) // reordered behind the change
	mustOpen(t, rcv, new1, 2*time.Second, []byte("n1"))
	mustOpen(t, rcv, old2, 3*time.Second, []byte("o2"))
	mustReject(t, rcv, old2, 3*time.Second, ErrReplay)
	mustReject(t, rcv, new1, 3*time.Second, ErrReplay)

	// A third epoch: 5 is gone at once, 6 becomes the previous epoch.
	old4 := seal(t, snd, []byte("n3"))
	advance(t, s, snd, rcv, 7)
	mustReject(t, rcv, seal(t, snd, nil)[:0:0], 0, ErrMalformed)
	mustReject(t, rcv, old1, 3*time.Second, ErrUnknownEpoch)
	mustOpen(t, rcv, old4, 3*time.Second, []byte("n3"))
	if cur, ok, prev, pok := rcv.Epochs(); cur != 7 || !ok || prev != 6 || !pok {
		t.Fatalf("epochs %d %v %d %v", cur, ok, prev, pok)
	}
}

// The grace period runs from the first record of the new epoch, for
// GracePeriod or GraceRecords records, whichever ends first; then the
// previous keys are wiped.
func TestDatagramGracePeriod(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	t.Run("time", func(t *testing.T) {
		snd, rcv := datagramPair(t, s, 1, 1, Config{})
		old := [3][]byte{seal(t, snd, []byte("a")), seal(t, snd, []byte("b")), seal(t, snd, []byte("c"))}
		advance(t, s, snd, rcv, 2)
		// Installed but unused: the peer still sends under epoch 1, so
		// epoch 1 does not time out however long that takes.
		mustOpen(t, rcv, old[0], time.Hour, []byte("a"))
		mustOpen(t, rcv, seal(t, snd, []byte("new")), 2*time.Hour, []byte("new"))
		mustOpen(t, rcv, old[1], 2*time.Hour+DefaultGracePeriod-1, []byte("b"))
		prevKeys := rcv.slots[rcv.cur^1].keys
		if _, err := open(rcv, old[2], 2*time.Hour+DefaultGracePeriod); err != ErrUnknownEpoch {
			t.Fatalf("after grace: %v", err)
		}
		if prevKeys.aead != nil || prevKeys.iv != [12]byte{} {
			t.Fatal("expired keys not wiped")
		}
	})
	t.Run("records", func(t *testing.T) {
		snd, rcv := datagramPair(t, s, 1, 1, Config{GraceRecords: 3})
		old := seal(t, snd, []byte("late"))
		advance(t, s, snd, rcv, 2)
		for i := 0; i < 2; i++ {
			mustOpen(t, rcv, seal(t, snd, nil), 0, nil)
		}
		if _, _, _, ok := rcv.Epochs(); !ok {
			t.Fatal("previous epoch gone early")
		}
		mustOpen(t, rcv, seal(t, snd, nil), 0, nil)
		if _, _, _, ok := rcv.Epochs(); ok {
			t.Fatal("previous epoch kept after GraceRecords")
		}
		mustReject(t, rcv, old, 0, ErrUnknownEpoch)
	})
	t.Run("expire", func(t *testing.T) {
		snd, rcv := datagramPair(t, s, 1, 1, Config{GracePeriod: time.Second})
		advance(t, s, snd, rcv, 2)
		if rcv.Expire(time.Hour) {
			t.Fatal("grace expired before it started")
		}
		mustOpen(t, rcv, seal(t, snd, nil), 10*time.Second, nil)
		if rcv.Expire(10*time.Second + 999*time.Millisecond) {
			t.Fatal("expired early")
		}
		if !rcv.Expire(11 * time.Second) {
			t.Fatal("did not expire")
		}
		if _, _, _, ok := rcv.Epochs(); ok {
			t.Fatal("previous epoch still held")
		}
	})
}

// The two-party profile's responder may replace its pending epoch's keys
// while no record authenticated under them; not afterwards.
func TestDatagramReplacePending(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 1, 1, Config{})
	old := seal(t, snd, []byte("old"))
	_, pending := keyPair(t, s, 2, 'p') // our dropped commit's epoch 2
	if err := rcv.SetKeys(pending); err != nil {
		t.Fatal(err)
	}
	sk, rk := keyPair(t, s, 2, 'd') // the initiator's epoch 2
	if err := rcv.SetKeys(rk); err != nil {
		t.Fatalf("replacing pending keys: %v", err)
	}
	if pending.aead != nil {
		t.Fatal("dropped keys not wiped")
	}
	mustOpen(t, rcv, old, 0, []byte("old"))
	if err := snd.SetKeys(sk); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, rcv, seal(t, snd, []byte("new")), 0, []byte("new"))
	_, again := keyPair(t, s, 2, 'q')
	if err := rcv.SetKeys(again); err != ErrEpochOrder {
		t.Fatalf("replacing used keys: %v", err)
	}
}

// Epochs that agree in their low 16 bits cannot both be held.
func TestDatagramEpochWireCollision(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	snd, rcv := datagramPair(t, s, 3, 1, Config{})
	old := seal(t, snd, []byte("x"))
	advance(t, s, snd, rcv, 3+1<<16)
	if _, _, _, ok := rcv.Epochs(); ok {
		t.Fatal("colliding previous epoch kept")
	}
	mustReject(t, rcv, old, 0, ErrBadRecordMAC)
	mustOpen(t, rcv, seal(t, snd, []byte("y")), 0, []byte("y"))
}

func TestDatagramErrors(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	rcv := NewDatagramReceiver(1, Config{})
	snd, _ := datagramPair(t, s, 1, 1, Config{})
	d := seal(t, snd, []byte("x"))
	if _, err := open(rcv, d, 0); err != ErrUnknownEpoch {
		t.Fatalf("no keys: %v", err)
	}
	if _, err := NewDatagramSender(1, Config{}).Seal(nil, ContentApplicationData, nil, 0); err != ErrNoKeys {
		t.Fatalf("sender without keys: %v", err)
	}
	if err := rcv.SetKeys(nil); err != ErrInvalidArgument {
		t.Fatal("nil keys accepted")
	}
	for _, b := range [][]byte{nil, {0x80}, make([]byte, 31)} {
		if _, _, err := rcv.Open(b, 0); err != ErrMalformed {
			t.Fatalf("short datagram: %v", err)
		}
	}
	if idx, ok := DatagramReceiverIndex(d); !ok || idx != 1 {
		t.Fatal("DatagramReceiverIndex")
	}
	if _, ok := DatagramReceiverIndex([]byte{0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}); ok {
		t.Fatal("control datagram has no receiver index")
	}
	_, rcv2 := datagramPair(t, s, 1, 1, Config{})
	rcv2.Close()
	if _, err := open(rcv2, d, 0); err != ErrUnknownEpoch {
		t.Fatalf("closed receiver: %v", err)
	}
}

// An authentic record with an invalid inner plaintext is refused, but its
// sequence number is spent: the peer did send it.
func TestDatagramBadInner(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	_, rcv := datagramPair(t, s, 1, 1, Config{})
	secret := testSecret(s, 1, 'd')
	key := refExpandLabel(s.Hash, secret, "key", nil, 16)
	iv := refExpandLabel(s.Hash, secret, "iv", nil, 12)
	hdr := []byte{0x80, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	d := refAEAD(t, s.AEAD, key).Seal(bytes.Clone(hdr), refNonce(iv, 0), []byte{0, 0, 0}, hdr)
	if _, err := open(rcv, d, 0); err != ErrUnexpectedMessage {
		t.Fatalf("%v", err)
	}
	if _, err := open(rcv, d, 0); err != ErrReplay {
		t.Fatalf("%v", err)
	}
}
