package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestVarintExamplesFromRFC(t *testing.T) {
	for _, tc := range []struct {
		enc []byte
		v   uint64
	}{
		{[]byte{0x9d, 0x7f, 0x3e, 0x7d}, 494878333},
		{[]byte{0x7b, 0xbd}, 15293},
		{[]byte{0x25}, 37},
		{[]byte{0x00}, 0},
		{[]byte{0x3f}, 63},
		{[]byte{0x40, 0x40}, 64},
		{[]byte{0x7f, 0xff}, 16383},
		{[]byte{0x80, 0x00, 0x40, 0x00}, 16384},
		{[]byte{0xbf, 0xff, 0xff, 0xff}, MaxVarint},
	} {
		v, n, err := ParseVarint(tc.enc)
		if err != nil || v != tc.v || n != len(tc.enc) {
			t.Errorf("ParseVarint(%x) = %d, %d, %v; want %d, %d", tc.enc, v, n, err, tc.v, len(tc.enc))
		}
		enc, ok := AppendVarint(nil, tc.v)
		if !ok || !bytes.Equal(enc, tc.enc) {
			t.Errorf("AppendVarint(%d) = %x; want %x", tc.v, enc, tc.enc)
		}
		if VarintLen(tc.v) != len(tc.enc) {
			t.Errorf("VarintLen(%d) = %d", tc.v, VarintLen(tc.v))
		}
	}
}

func TestVarintRejects(t *testing.T) {
	for _, tc := range []struct {
		enc  []byte
		want error
	}{
		{nil, ErrTruncated},
		{[]byte{0x40}, ErrTruncated},
		{[]byte{0x80, 0, 0}, ErrTruncated},
		{[]byte{0xc0}, ErrVarintPrefix},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrVarintPrefix},
		{[]byte{0x40, 0x00}, ErrNonMinimal},
		{[]byte{0x40, 0x3f}, ErrNonMinimal},
		{[]byte{0x80, 0x00, 0x00, 0x3f}, ErrNonMinimal},
		{[]byte{0x80, 0x00, 0x3f, 0xff}, ErrNonMinimal},
	} {
		if _, _, err := ParseVarint(tc.enc); !errors.Is(err, tc.want) {
			t.Errorf("ParseVarint(%x) error = %v; want %v", tc.enc, err, tc.want)
		}
	}
	if _, ok := AppendVarint(nil, 1<<30); ok {
		t.Error("AppendVarint accepted 2^30")
	}
}

type sample struct {
	a   uint8
	b   uint16
	c   uint32
	d   uint64
	opt *uint32
	raw []byte
	vec [][]byte
}

func (s *sample) MarshalMLS(w *Writer) {
	w.U8(s.a)
	w.U16(s.b)
	w.U32(s.c)
	w.U64(s.d)
	w.Bool(s.opt != nil)
	if s.opt != nil {
		w.U32(*s.opt)
	}
	w.Opaque(s.raw)
	w.Vector(func(w *Writer) {
		for _, v := range s.vec {
			w.Opaque(v)
		}
	})
}

func (s *sample) UnmarshalMLS(r *Reader) {
	s.a = r.U8()
	s.b = r.U16()
	s.c = r.U32()
	s.d = r.U64()
	if r.Bool() {
		v := r.U32()
		s.opt = &v
	}
	s.raw = r.Opaque()
	s.vec = nil
	r.Vector(func(r *Reader) { s.vec = append(s.vec, r.Opaque()) })
}

func validSample() *sample {
	seven := uint32(7)
	return &sample{
		a: 1, b: 0x0203, c: 0x04050607, d: 0x08090a0b0c0d0e0f, opt: &seven,
		raw: bytes.Repeat([]byte{0xaa}, 100),
		vec: [][]byte{{1}, {}, bytes.Repeat([]byte{2}, 70)},
	}
}

func TestRoundTrip(t *testing.T) {
	in := validSample()
	enc, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out sample
	if err := Unmarshal(enc, &out); err != nil {
		t.Fatal(err)
	}
	again, err := Marshal(&out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, again) {
		t.Fatalf("re-encoding differs:\n%x\n%x", enc, again)
	}
	if *out.opt != 7 || len(out.vec) != 3 || len(out.raw) != 100 {
		t.Fatalf("decoded wrong values: %+v", out)
	}
	// A 70-byte element needs a two-byte header; the vector's own header
	// then grows past one byte too, exercising the in-place insert.
	if enc[len(enc)-1] != 2 {
		t.Fatal("last byte should be the end of the last element")
	}
}

func TestTruncatedInputFailsCleanly(t *testing.T) {
	enc, err := Marshal(validSample())
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(enc); n++ {
		var out sample
		if err := Unmarshal(enc[:n], &out); err == nil {
			t.Fatalf("prefix of %d/%d bytes decoded without error", n, len(enc))
		}
	}
}

func TestTrailingBytesRejected(t *testing.T) {
	enc, _ := Marshal(validSample())
	var out sample
	if err := Unmarshal(append(enc, 0), &out); !errors.Is(err, ErrTrailing) {
		t.Fatalf("error = %v; want ErrTrailing", err)
	}
}

func TestOptionalPresenceOctet(t *testing.T) {
	r := NewReader([]byte{2})
	r.Bool()
	if !errors.Is(r.Err(), ErrOptional) {
		t.Fatalf("error = %v; want ErrOptional", r.Err())
	}
}

func TestOversizedLengthDoesNotAllocate(t *testing.T) {
	// A header claiming 2^30-1 bytes followed by 3 bytes must fail before
	// any buffer of the claimed size exists.
	in := []byte{0xbf, 0xff, 0xff, 0xff, 1, 2, 3}
	allocs := testing.AllocsPerRun(100, func() {
		r := NewReader(in)
		if r.Opaque() != nil || !errors.Is(r.Err(), ErrBadLength) {
			t.Fatalf("oversized vector accepted: %v", r.Err())
		}
	})
	// The Reader and its error cell, plus the formatted error.
	if allocs > 6 {
		t.Fatalf("%v allocations for a rejected header", allocs)
	}
}

func TestErrorsAreSticky(t *testing.T) {
	r := NewReader([]byte{0xc0, 1, 2, 3, 4, 5, 6, 7, 8})
	_ = r.Opaque()
	if r.U8() != 0 || r.U64() != 0 || r.Fixed(1) != nil {
		t.Fatal("reads after an error returned data")
	}
	if !errors.Is(r.Finish(), ErrVarintPrefix) {
		t.Fatalf("Finish = %v", r.Finish())
	}
}

func TestSubReaderSharesErrors(t *testing.T) {
	// A vector of 2 bytes holding a truncated uint32.
	r := NewReader([]byte{0x02, 0xaa, 0xbb})
	sub := r.Sub()
	sub.U32()
	if !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("parent error = %v; want ErrTruncated", r.Err())
	}
}

func TestVectorElementMustConsume(t *testing.T) {
	r := NewReader([]byte{0x02, 0xaa, 0xbb})
	calls := 0
	r.Vector(func(*Reader) { calls++ })
	if !errors.Is(r.Err(), ErrNoProgress) || calls != 1 {
		t.Fatalf("error = %v after %d calls; want ErrNoProgress after 1", r.Err(), calls)
	}
}

func TestWriterRejectsHugeVector(t *testing.T) {
	w := NewWriter(nil)
	w.Varint(1 << 30)
	if _, err := w.Bytes(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("error = %v; want ErrTooLong", err)
	}
}

func FuzzParseVarint(f *testing.F) {
	for _, seed := range [][]byte{{0}, {0x3f}, {0x40, 0x40}, {0x7f, 0xff}, {0x80, 0, 0x40, 0}, {0xbf, 0xff, 0xff, 0xff}, {0xc0}, {0x40, 0}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, n, err := ParseVarint(data)
		if err != nil {
			return
		}
		enc, ok := AppendVarint(nil, v)
		if !ok || !bytes.Equal(enc, data[:n]) {
			t.Fatalf("decoded %d from %x but it encodes as %x", v, data[:n], enc)
		}
	})
}

func FuzzReader(f *testing.F) {
	enc, _ := Marshal(validSample())
	f.Add(enc)
	f.Add([]byte{})
	f.Add([]byte{0xbf, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		if err := Unmarshal(data, &s); err != nil {
			return
		}
		again, err := Marshal(&s)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted %x but re-encodes as %x (%v)", data, again, err)
		}
	})
}
