package mls

import (
	"bytes"
	"crypto/mlkem"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// stdAccepts reports whether crypto/hpke's parse accepts pub for s, the
// reference checkUnparsedHPKEPublicKey must agree with.
func stdAccepts(t testing.TB, s *CipherSuite, pub []byte) bool {
	kem, ok := s.stdKEM()
	if !ok {
		t.Fatalf("%s: no crypto/hpke KEM", s.Name)
	}
	_, err := kem.NewPublicKey(pub)
	return err == nil
}

// uncheckedSuites are the suites whose keys checkUnparsedHPKEPublicKey
// handles.
func uncheckedSuites(t testing.TB) []*CipherSuite {
	var out []*CipherSuite
	for _, s := range Suites() {
		if handled, _ := checkUnparsedHPKEPublicKey(s, nil); handled {
			out = append(out, s)
		}
	}
	if len(out) < 3 {
		t.Fatalf("only %d suites checked without parsing", len(out))
	}
	return out
}

// setCoefficient writes the 12-bit coefficient i of an ML-KEM key's t.
func setCoefficient(ek []byte, i int, v uint16) {
	off := i / 2 * 3
	d := uint32(ek[off]) | uint32(ek[off+1])<<8 | uint32(ek[off+2])<<16
	if i%2 == 0 {
		d = d&^0xfff | uint32(v)
	} else {
		d = d&0xfff | uint32(v)<<12
	}
	ek[off], ek[off+1], ek[off+2] = byte(d), byte(d>>8), byte(d>>16)
}

// The check without parsing accepts and refuses exactly the keys that
// crypto/hpke's parse does: generated keys, keys with one coefficient at
// q-1 (valid), q or 4095 (invalid) anywhere in t, any seed, wrong lengths.
func TestUnparsedHPKEPublicKeyCheckMatchesParse(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
	}
	for _, s := range uncheckedSuites(t) {
		t.Run(s.Name, func(t *testing.T) {
			_, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			agree := func(what string, k []byte, want bool) {
				t.Helper()
				_, err := checkUnparsedHPKEPublicKey(s, k)
				if std := stdAccepts(t, s, k); std != want || (err == nil) != want {
					t.Fatalf("%s: crypto/hpke accepts %v, check %v, want %v", what, std, err, want)
				}
			}
			agree("generated", pub, true)
			for _, n := range []int{0, 1, len(pub) - 1, len(pub) + 1} {
				k := make([]byte, n)
				copy(k, pub)
				agree("length", k, false)
			}
			if s.KEMID == kemDHKEMX25519 {
				k := bytes.Clone(pub)
				fill(k)
				agree("random X25519", k, true)
				return
			}
			for range 200 {
				i := rng.IntN(3 * 256)
				for _, v := range []uint16{0, mlkemQ - 1, mlkemQ, mlkemQ + 1, 0xfff} {
					k := bytes.Clone(pub)
					setCoefficient(k, i, v)
					agree("coefficient", k, v < mlkemQ)
				}
			}
			// The seed rho and the X25519 half are any bytes.
			k := bytes.Clone(pub)
			fill(k[mlkem.EncapsulationKeySize768-32:])
			agree("seed", k, true)
		})
	}
}

// FuzzUnparsedHPKEPublicKey: for every input and suite the check without
// parsing agrees with crypto/hpke's parse, and never panics.
func FuzzUnparsedHPKEPublicKey(f *testing.F) {
	suites := uncheckedSuites(f)
	for n, s := range suites {
		_, pub, err := s.GenerateHPKEKeyPair()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(n), pub, uint16(0), uint16(0))
		f.Add(uint8(n), pub, uint16(5), uint16(mlkemQ))
		f.Add(uint8(n), pub[:len(pub)-1], uint16(0), uint16(0))
	}
	f.Fuzz(func(t *testing.T, which uint8, pub []byte, at, v uint16) {
		s := suites[int(which)%len(suites)]
		k := bytes.Clone(pub)
		// Steer a coefficient near q, where the two could disagree;
		// random bytes rarely land there.
		if s.KEMID != kemDHKEMX25519 && len(k) >= mlkem.EncapsulationKeySize768 {
			setCoefficient(k, int(at)%(3*256), mlkemQ-2+v%5)
		}
		_, err := checkUnparsedHPKEPublicKey(s, k)
		if std := stdAccepts(t, s, k); std != (err == nil) {
			t.Fatalf("%s: crypto/hpke accepts %v, check says %v (%d bytes, %x...)", s.Name, std, err, len(k), binary.BigEndian.Uint32(append(k, 0, 0, 0, 0)))
		}
	})
}
