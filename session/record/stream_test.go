package record

import (
	"bytes"
	"crypto"
	"testing"
)

// handRecord builds a TLS 1.3 record with nothing but crypto/cipher and the
// layout of RFC 9846 section 5.2, from a traffic secret.
func handRecord(t *testing.T, s Suite, secret []byte, seq uint64, ct byte, content []byte, padding int) []byte {
	t.Helper()
	key := refExpandLabel(s.Hash, secret, "key", nil, refKeyLen(s.AEAD))
	iv := refExpandLabel(s.Hash, secret, "iv", nil, 12)
	inner := append(bytes.Clone(content), ct)
	inner = append(inner, make([]byte, padding)...)
	n := len(inner) + 16
	hdr := []byte{23, 3, 3, byte(n >> 8), byte(n)}
	return refAEAD(t, s.AEAD, key).Seal(hdr, refNonce(iv, seq), inner, hdr)
}

func streamPair(t testing.TB, s Suite, epoch uint64) (*StreamWriter, *StreamReader) {
	t.Helper()
	wk, rk := keyPair(t, s, epoch, 's')
	w, r := NewStreamWriter(Config{}), NewStreamReader()
	if err := w.SetKeys(wk); err != nil {
		t.Fatal(err)
	}
	if err := r.SetKeys(rk); err != nil {
		t.Fatal(err)
	}
	return w, r
}

// A record encrypted by hand decrypts with the layer, and the layer's own
// records are byte-identical to the hand-made ones.
func TestStreamRecordByHand(t *testing.T) {
	for _, tc := range testSuites {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.suite
			secret := testSecret(s, 3, 's')
			w, r := streamPair(t, s, 3)
			msgs := []struct {
				ct      byte
				content string
				padding int
			}{
				{23, "first IP packet", 0},
				{22, "EpochKeyUpdate", 7},
				{23, "", 3},
				{21, "\x01\x00", 0},
			}
			for seq, m := range msgs {
				hand := handRecord(t, s, secret, uint64(seq), m.ct, []byte(m.content), m.padding)
				if n := r.Feed(hand); n != len(hand) {
					t.Fatalf("Feed took %d of %d", n, len(hand))
				}
				ct, content, err := r.Next()
				if err != nil || byte(ct) != m.ct || string(content) != m.content {
					t.Fatalf("record %d: %v %d %q", seq, err, ct, content)
				}
				mine, err := w.SealRecord(nil, ContentType(m.ct), []byte(m.content), m.padding)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(mine, hand) {
					t.Fatalf("record %d:\n got %x\nwant %x", seq, mine, hand)
				}
			}
			if _, _, err := r.Next(); err != ErrNeedMore {
				t.Fatalf("empty reader: %v", err)
			}
		})
	}
}

// Bytes trickle in one at a time; records come out whole and in order.
func TestStreamIncremental(t *testing.T) {
	s := Suite{AES256GCM, crypto.SHA384}
	w, r := streamPair(t, s, 1)
	var wire []byte
	var want []string
	for i := 0; i < 20; i++ {
		p := bytes.Repeat([]byte{byte(i + 1)}, i*97)
		want = append(want, string(p))
		var err error
		if wire, err = w.SealRecord(wire, ContentApplicationData, p, i%5); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte{0xab}, MaxPlaintext)
	want = append(want, string(big))
	wire, _ = w.SealRecord(wire, ContentApplicationData, big, 0)

	var got []string
	for i := 0; i < len(wire); {
		// Alternate zero-copy reads and Feed.
		if i%2 == 0 {
			buf := r.Buffer()
			n := copy(buf[:min(len(buf), 1+i%3)], wire[i:])
			if err := r.Advance(n); err != nil {
				t.Fatal(err)
			}
			i += n
		} else {
			i += r.Feed(wire[i : i+1])
		}
		for {
			_, c, err := r.Next()
			if err == ErrNeedMore {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(c))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("record %d differs", i)
		}
	}
	if r.Sequence() != uint64(len(want)) || w.Sequence() != uint64(len(want)) {
		t.Fatal("sequence numbers out of step")
	}
}

// Sealing in place: the payload already sits after the header room and the
// result shares the caller's buffer.
func TestStreamSealInPlace(t *testing.T) {
	w, r := streamPair(t, Suite{AES128GCM, crypto.SHA256}, 1)
	buf := make([]byte, 4096)
	payload := buf[StreamHeaderLen : StreamHeaderLen+1000]
	for i := range payload {
		payload[i] = byte(i)
	}
	want := bytes.Clone(payload)
	rec, err := w.SealRecord(buf[:0], ContentApplicationData, payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	if &rec[0] != &buf[0] || len(rec) != 1000+StreamOverhead {
		t.Fatal("record not built in place")
	}
	r.Feed(rec)
	if _, c, err := r.Next(); err != nil || !bytes.Equal(c, want) {
		t.Fatalf("%v", err)
	}
}

// Each kind of bad record is fatal, and the error sticks.
func TestStreamFatal(t *testing.T) {
	s := Suite{ChaCha20Poly1305, crypto.SHA256}
	secret := testSecret(s, 1, 's')
	good := handRecord(t, s, secret, 0, 23, []byte("data"), 0)
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"outer type", flip(0), ErrMalformed},
		{"version", flip(2), ErrMalformed},
		{"length changed", flip(4), ErrBadRecordMAC},
		{"ciphertext", flip(6), ErrBadRecordMAC},
		{"tag", flip(len(good) - 1), ErrBadRecordMAC},
		{"too short to authenticate", []byte{23, 3, 3, 0, 16}, ErrBadRecordMAC},
		// Overflow shows on the header alone, before the body arrives.
		{"ciphertext over 2^14+256", []byte{23, 3, 3, 0x41, 0x01}, ErrRecordOverflow},
		{"inner plaintext over 2^14+1", []byte{23, 3, 3, 0x40, 0x12}, ErrRecordOverflow},
		{"all padding", handRecord(t, s, secret, 0, 0, nil, 5), ErrUnexpectedMessage},
		{"unknown inner type", handRecord(t, s, secret, 0, 99, []byte("x"), 0), ErrUnexpectedMessage},
		{"protected change_cipher_spec", handRecord(t, s, secret, 0, 20, []byte{1}, 0), ErrUnexpectedMessage},
		{"empty handshake", handRecord(t, s, secret, 0, 22, nil, 2), ErrUnexpectedMessage},
		{"empty alert", handRecord(t, s, secret, 0, 21, nil, 0), ErrUnexpectedMessage},
		{"wrong sequence number", handRecord(t, s, secret, 1, 23, []byte("data"), 0), ErrBadRecordMAC},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, r := streamPair(t, s, 1)
			r.Feed(c.input)
			if _, _, err := r.Next(); err != c.want {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			r.Feed(good)
			if _, _, err := r.Next(); err != c.want || r.Err() != c.want {
				t.Fatalf("error did not stick: %v", err)
			}
			if r.keys != nil {
				t.Fatal("keys kept after a fatal error")
			}
		})
	}
}

func TestStreamSealChecks(t *testing.T) {
	w := NewStreamWriter(Config{})
	if _, err := w.SealRecord(nil, ContentApplicationData, nil, 0); err != ErrNoKeys {
		t.Fatalf("no keys: %v", err)
	}
	w, _ = streamPair(t, Suite{AES128GCM, crypto.SHA256}, 1)
	dst := []byte("prefix")
	for _, c := range []struct {
		ct      ContentType
		n, pad  int
		wantErr error
	}{
		{ContentApplicationData, MaxPlaintext + 1, 0, ErrRecordOverflow},
		{ContentApplicationData, MaxPlaintext, 1, ErrRecordOverflow},
		{ContentApplicationData, 10, MaxPlaintext, ErrRecordOverflow},
		{ContentApplicationData, 1, -1, ErrInvalidArgument},
		{20, 1, 0, ErrInvalidArgument},
		{ContentHandshake, 0, 4, ErrInvalidArgument},
	} {
		out, err := w.SealRecord(dst, c.ct, make([]byte, c.n), c.pad)
		if err != c.wantErr || string(out) != "prefix" {
			t.Errorf("%v/%d/%d: err %v", c.ct, c.n, c.pad, err)
		}
	}
	if w.Sequence() != 0 {
		t.Fatal("failed seals consumed sequence numbers")
	}
	// The largest legal records.
	if _, err := w.SealRecord(nil, ContentApplicationData, make([]byte, MaxPlaintext), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.SealRecord(nil, ContentApplicationData, nil, MaxPlaintext); err != nil {
		t.Fatal(err)
	}
}

// After a key change both sides restart at sequence number zero; the reader
// switches between two records that arrived in the same read.
func TestStreamKeyChange(t *testing.T) {
	s := Suite{AES128GCM, crypto.SHA256}
	w, r := streamPair(t, s, 1)
	wire, _ := w.SealRecord(nil, ContentHandshake, []byte("EpochKeyUpdate"), 0)
	wk, rk := keyPair(t, s, 2, 's')
	if err := w.SetKeys(wk); err != nil {
		t.Fatal(err)
	}
	if w.Sequence() != 0 {
		t.Fatal("sequence number not reset")
	}
	wire, _ = w.SealRecord(wire, ContentApplicationData, []byte("new epoch"), 0)
	r.Feed(wire)
	if ct, _, err := r.Next(); err != nil || ct != ContentHandshake {
		t.Fatal(err)
	}
	if err := r.SetKeys(rk); err != nil {
		t.Fatal(err)
	}
	if _, c, err := r.Next(); err != nil || string(c) != "new epoch" {
		t.Fatalf("%v %q", err, c)
	}
	old, _ := keyPair(t, s, 1, 's')
	if err := r.SetKeys(old); err != ErrEpochOrder {
		t.Fatalf("older epoch: %v", err)
	}
}

func TestStreamBufferBounds(t *testing.T) {
	r := NewStreamReader()
	if err := r.Advance(-1); err != ErrInvalidArgument {
		t.Fatal("negative advance")
	}
	if err := r.Advance(len(r.Buffer()) + 1); err != ErrInvalidArgument {
		t.Fatal("advance past buffer")
	}
	// Without keys a complete record waits; it is not a fatal error.
	w, _ := streamPair(t, Suite{AES128GCM, crypto.SHA256}, 1)
	rec, _ := w.SealRecord(nil, ContentApplicationData, []byte("x"), 0)
	r.Feed(rec)
	if _, _, err := r.Next(); err != ErrNoKeys || r.Err() != nil {
		t.Fatalf("%v", err)
	}
	// A full buffer takes no more bytes until records are consumed.
	r2 := NewStreamReader()
	junk := bytes.Repeat(rec, 2*streamBufLen/len(rec))
	if n := r2.Feed(junk); n != streamBufLen {
		t.Fatalf("Feed took %d", n)
	}
	if n := r2.Feed(junk); n != 0 || len(r2.Buffer()) != 0 {
		t.Fatalf("full buffer took %d more", n)
	}
}
