package mls

import (
	"bytes"
	"encoding/asn1"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	circlhpke "github.com/cloudflare/circl/hpke"
)

// scSizes are the encodings each suite must produce: signature private and
// public key, a bound on the signature, HPKE private key, public key and
// KEM output (Nsk, Npk, Nenc of RFC 9180 and draft-ietf-hpke-pq).
type scSizes struct {
	sigPriv, sigPub, maxSig int
	nsk, npk, nenc          int
}

var scExpectedSizes = map[CipherSuiteID]scSizes{
	0x0001: {32, 32, 64, 32, 32, 32},
	0x0002: {32, 65, 72, 32, 65, 65},
	0x0003: {32, 32, 64, 32, 32, 32},
	0x0004: {57, 57, 114, 56, 56, 56},
	0x0005: {66, 133, 139, 66, 133, 133},
	0x0006: {57, 57, 114, 56, 56, 56},
	0x0007: {48, 97, 104, 48, 97, 97},
	0xF001: {32, 32, 64, 32, 1216, 1120},
	0xF00A: {32, 1952, 3309, 64, 1184, 1088},
}

func scIsPQ(s *CipherSuite) bool {
	return s.KEMID == kemMLKEM768 || s.KEMID == kemMLKEM768X25519
}

func scNoVectorsNote(t *testing.T, s *CipherSuite) {
	t.Helper()
	if scIsPQ(s) {
		t.Logf("%s: no official MLS test vectors exist for this suite (draft-ietf-mls-pq-ciphersuites publishes none); "+
			"only round-trip, negative and malformed-input tests cover it", s.Name)
	}
}

// scExpectErr requires a clean rejection: an error in our "mls: " format
// that did not come from the panic backstop, which is there for the
// unexpected and must not be what these inputs rely on.
func scExpectErr(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: accepted, want an error", what)
	case !strings.HasPrefix(err.Error(), "mls: "):
		t.Errorf("%s: error %q lacks the \"mls: \" prefix", what, err)
	case strings.Contains(err.Error(), "internal failure"):
		t.Errorf("%s: library panicked: %v", what, err)
	}
}

func scFlip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x01
	return c
}

func scFill(n int, v byte) []byte { return bytes.Repeat([]byte{v}, n) }

// scMalformedLengths returns nil, empty, truncated and extended variants of
// a well-formed encoding.
func scMalformedLengths(good []byte) map[string][]byte {
	return map[string][]byte{
		"nil":       nil,
		"empty":     {},
		"one byte":  good[:1],
		"truncated": good[:len(good)-1],
		"too long":  append(bytes.Clone(good), 0),
		"doubled":   append(bytes.Clone(good), good...),
	}
}

// scMalformedPrivateKeys is scMalformedLengths for private keys. NIST-curve
// scalars may legitimately be shorter than the field (minimal big-endian
// encodings, see TestSuiteCryptoShortNISTScalars), so for them only the
// empty and too-long variants are malformed.
func scMalformedPrivateKeys(priv []byte, nist bool) map[string][]byte {
	m := scMalformedLengths(priv)
	if nist {
		delete(m, "one byte")
		delete(m, "truncated")
	}
	return m
}

func (s *CipherSuite) isECDSA() bool {
	_, ok := s.ecdsaParams()
	return ok
}

// TestSuiteCryptoShortNISTScalars: the official message-protection and
// passive-client vectors hold 65-byte P-521 signature and HPKE private keys,
// minimal big-endian encodings of scalars whose top byte is zero. Such a
// key, and one stripped further, must act exactly like the Nsk-byte form.
func TestSuiteCryptoShortNISTScalars(t *testing.T) {
	for _, s := range Suites() {
		if !s.isECDSA() && s.nistScalarSize() == 0 {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			if s.isECDSA() {
				priv, _, err := s.GenerateSignatureKeyPair()
				if err != nil {
					t.Fatal(err)
				}
				priv[0], priv[1] = 0, 0
				pub, err := s.SignaturePublicKey(priv)
				if err != nil {
					t.Fatal(err)
				}
				for _, short := range [][]byte{priv[1:], priv[2:]} {
					if got, err := s.SignaturePublicKey(short); err != nil || !bytes.Equal(got, pub) {
						t.Errorf("%d-byte scalar: public key %x, %v; want %x", len(short), got, err, pub)
					}
					sig, err := s.SignWithLabel(short, "l", []byte("c"))
					if err != nil {
						t.Fatalf("%d-byte scalar: %v", len(short), err)
					}
					if err := s.VerifyWithLabel(pub, "l", []byte("c"), sig); err != nil {
						t.Errorf("%d-byte scalar: %v", len(short), err)
					}
				}
			}
			if n := s.nistScalarSize(); n > 0 {
				priv, _, err := s.GenerateHPKEKeyPair()
				if err != nil {
					t.Fatal(err)
				}
				priv[0], priv[1] = 0, 0
				pub, err := s.HPKEPublicKey(priv)
				if err != nil {
					t.Fatal(err)
				}
				enc, ct, err := s.EncryptWithLabel(pub, "l", nil, []byte("p"))
				if err != nil {
					t.Fatal(err)
				}
				for _, short := range [][]byte{priv[1:], priv[2:]} {
					if got, err := s.HPKEPublicKey(short); err != nil || !bytes.Equal(got, pub) {
						t.Errorf("%d-byte scalar: public key %x, %v; want %x", len(short), got, err, pub)
					}
					if pt, err := s.DecryptWithLabel(short, "l", nil, enc, ct); err != nil || string(pt) != "p" {
						t.Errorf("%d-byte scalar: decrypt %q, %v", len(short), pt, err)
					}
				}
			}
		})
	}
}

func TestSuiteCryptoSignatures(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			scNoVectorsNote(t, s)
			want := scExpectedSizes[s.ID]
			priv, pub, err := s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if len(priv) != want.sigPriv || len(pub) != want.sigPub {
				t.Fatalf("key sizes priv %d pub %d, want %d %d", len(priv), len(pub), want.sigPriv, want.sigPub)
			}
			if got, err := s.SignaturePublicKey(priv); err != nil || !bytes.Equal(got, pub) {
				t.Fatalf("SignaturePublicKey(priv) = %x, %v; want the generated public key", got, err)
			}
			priv2, pub2, err := s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(priv, priv2) || bytes.Equal(pub, pub2) {
				t.Fatal("two generated key pairs are equal")
			}

			const label = "LeafNodeTBS"
			content := []byte("leaf node to be signed")
			sig, err := s.SignWithLabel(priv, label, content)
			if err != nil {
				t.Fatal(err)
			}
			if len(sig) == 0 || len(sig) > want.maxSig {
				t.Fatalf("signature is %d bytes, want 1..%d", len(sig), want.maxSig)
			}
			if err := s.VerifyWithLabel(pub, label, content, sig); err != nil {
				t.Fatalf("round trip: %v", err)
			}
			for _, c := range [][]byte{nil, {}, bytes.Repeat([]byte{0xa5}, 1<<16)} {
				sig, err := s.SignWithLabel(priv, label, c)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.VerifyWithLabel(pub, label, c, sig); err != nil {
					t.Errorf("round trip with %d-byte content: %v", len(c), err)
				}
			}

			scExpectErr(t, "wrong label", s.VerifyWithLabel(pub, "LeafNodeTBs", content, sig))
			scExpectErr(t, "empty label", s.VerifyWithLabel(pub, "", content, sig))
			scExpectErr(t, "wrong content", s.VerifyWithLabel(pub, label, scFlip(content, 0), sig))
			scExpectErr(t, "extended content", s.VerifyWithLabel(pub, label, append(bytes.Clone(content), 0), sig))
			scExpectErr(t, "other key", s.VerifyWithLabel(pub2, label, content, sig))
			// The label prefix must be part of what is signed: a raw
			// signature of the content is no labelled signature, and the
			// other way round.
			scExpectErr(t, "unlabelled verify", s.Verify(pub, content, sig))
			raw, err := s.Sign(priv, content)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(pub, content, raw); err != nil {
				t.Fatalf("raw round trip: %v", err)
			}
			scExpectErr(t, "raw signature as labelled", s.VerifyWithLabel(pub, label, content, raw))

			for _, i := range []int{0, 1, len(sig) / 2, len(sig) - 2, len(sig) - 1} {
				scExpectErr(t, "tampered signature byte "+strconv.Itoa(i), s.VerifyWithLabel(pub, label, content, scFlip(sig, i)))
			}
			for name, bad := range scMalformedLengths(sig) {
				scExpectErr(t, name+" signature", s.VerifyWithLabel(pub, label, content, bad))
			}
			scExpectErr(t, "zero signature", s.VerifyWithLabel(pub, label, content, make([]byte, len(sig))))
			scExpectErr(t, "0xff signature", s.VerifyWithLabel(pub, label, content, scFill(len(sig), 0xff)))

			for name, bad := range scMalformedLengths(pub) {
				scExpectErr(t, name+" public key", s.VerifyWithLabel(bad, label, content, sig))
			}
			for name, bad := range map[string][]byte{"zero": make([]byte, len(pub)), "0xff": scFill(len(pub), 0xff), "flipped": scFlip(pub, len(pub)-1)} {
				scExpectErr(t, name+" public key", s.VerifyWithLabel(bad, label, content, sig))
			}

			for name, bad := range scMalformedPrivateKeys(priv, s.isECDSA()) {
				_, err := s.SignWithLabel(bad, label, content)
				scExpectErr(t, "Sign with "+name+" private key", err)
				_, err = s.SignaturePublicKey(bad)
				scExpectErr(t, "SignaturePublicKey of "+name+" private key", err)
			}
			if _, ok := s.ecdsaParams(); ok {
				// Scalars 0 and >= n are not private keys.
				for name, bad := range map[string][]byte{"zero": make([]byte, len(priv)), "0xff": scFill(len(priv), 0xff)} {
					_, err := s.SignWithLabel(bad, label, content)
					scExpectErr(t, "Sign with "+name+" scalar", err)
					_, err = s.SignaturePublicKey(bad)
					scExpectErr(t, "SignaturePublicKey of "+name+" scalar", err)
				}
			}

			// Ed25519 and Ed448 are deterministic; ECDSA and our hedged
			// ML-DSA are not. Either way both signatures must verify.
			sigB, err := s.SignWithLabel(priv, label, content)
			if err != nil {
				t.Fatal(err)
			}
			deterministic := s.Signature == SigEd25519 || s.Signature == SigEd448
			if bytes.Equal(sig, sigB) != deterministic {
				t.Errorf("signing twice gave equal=%v signatures, want equal=%v", bytes.Equal(sig, sigB), deterministic)
			}
			if err := s.VerifyWithLabel(pub, label, content, sigB); err != nil {
				t.Error(err)
			}
		})
	}
}

// scDERLen encodes a DER length, or with long=true a non-minimal long form
// with one extra length byte, which DER forbids.
func scDERLen(n int, long bool) []byte {
	var b []byte
	for v := n; v > 0; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
	}
	if !long && n < 0x80 {
		return []byte{byte(n)}
	}
	if long {
		b = append([]byte{0}, b...)
	}
	return append([]byte{0x80 | byte(len(b))}, b...)
}

func scDERTLV(tag byte, content []byte, long bool) []byte {
	out := append([]byte{tag}, scDERLen(len(content), long)...)
	return append(out, content...)
}

// scDERInt encodes a non-negative integer minimally, then adds pad extra
// leading zero bytes.
func scDERInt(v *big.Int, pad int) []byte {
	b := v.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return scDERTLV(0x02, append(make([]byte, pad), b...), false)
}

// TestSuiteCryptoECDSAStrictDER pins what crypto/ecdsa.VerifyASN1 accepts:
// strict DER only, but both s and n-s.
func TestSuiteCryptoECDSAStrictDER(t *testing.T) {
	for _, s := range Suites() {
		p, ok := s.ecdsaParams()
		if !ok {
			continue
		}
		t.Run(s.Name, func(t *testing.T) {
			priv, pub, err := s.GenerateSignatureKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("message")
			sig, err := s.Sign(priv, msg)
			if err != nil {
				t.Fatal(err)
			}
			var rs struct{ R, S *big.Int }
			if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 {
				t.Fatalf("signature is not one DER SEQUENCE: %v", err)
			}
			seq := func(r, s []byte, long bool) []byte { return scDERTLV(0x30, append(bytes.Clone(r), s...), long) }
			r, sv := scDERInt(rs.R, 0), scDERInt(rs.S, 0)
			if canonical := seq(r, sv, false); !bytes.Equal(canonical, sig) {
				t.Fatalf("re-encoding differs from Go's DER:\n %x\n %x", canonical, sig)
			}

			n := p.curve.Params().N
			negR := new(big.Int).Neg(rs.R)
			negRBytes, err := asn1.Marshal(negR)
			if err != nil {
				t.Fatal(err)
			}
			for name, bad := range map[string][]byte{
				"trailing byte":         append(bytes.Clone(sig), 0),
				"non-minimal r":         seq(scDERInt(rs.R, 1), sv, false),
				"non-minimal s":         seq(r, scDERInt(rs.S, 1), false),
				"long-form length":      seq(r, sv, true),
				"negative r":            seq(negRBytes, sv, false),
				"r+n":                   seq(scDERInt(new(big.Int).Add(rs.R, n), 0), sv, false),
				"swapped r and s":       seq(sv, r, false),
				"BER indefinite length": append(append([]byte{0x30, 0x80}, append(bytes.Clone(r), sv...)...), 0, 0),
			} {
				scExpectErr(t, name, s.Verify(pub, msg, bad))
			}

			// ECDSA is malleable: (r, n-s) verifies too. MLS does not
			// require low-s and Go does not enforce it.
			high := seq(r, scDERInt(new(big.Int).Sub(n, rs.S), 0), false)
			if err := s.Verify(pub, msg, high); err != nil {
				t.Errorf("(r, n-s) rejected: %v; update the ECDSA notes in signature.go", err)
			} else {
				t.Log("crypto/ecdsa accepts both s and n-s (no low-s rule), as expected")
			}
		})
	}
}

func TestSuiteCryptoHPKE(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			scNoVectorsNote(t, s)
			want := scExpectedSizes[s.ID]
			priv, pub, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if len(priv) != want.nsk || len(pub) != want.npk {
				t.Fatalf("key sizes priv %d pub %d, want %d %d", len(priv), len(pub), want.nsk, want.npk)
			}
			if got, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(got, pub) {
				t.Fatalf("HPKEPublicKey(priv) = %x, %v; want the generated public key", got, err)
			}
			priv2, pub2, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(priv, priv2) || bytes.Equal(pub, pub2) {
				t.Fatal("two generated key pairs are equal")
			}

			const label = "UpdatePathNode"
			ctx := []byte("group context")
			for _, pt := range [][]byte{nil, {}, {0x42}, bytes.Repeat([]byte{7}, 4096)} {
				enc, ct, err := s.EncryptWithLabel(pub, label, ctx, pt)
				if err != nil {
					t.Fatal(err)
				}
				if len(enc) != want.nenc || len(ct) != len(pt)+16 {
					t.Fatalf("kem output %d bytes, ciphertext %d; want %d and %d", len(enc), len(ct), want.nenc, len(pt)+16)
				}
				got, err := s.DecryptWithLabel(priv, label, ctx, enc, ct)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("round trip of %d bytes: %x, %v", len(pt), got, err)
				}
			}

			pt := []byte("path secret")
			enc, ct, err := s.EncryptWithLabel(pub, label, ctx, pt)
			if err != nil {
				t.Fatal(err)
			}
			enc2, ct2, err := s.EncryptWithLabel(pub, label, ctx, pt)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(enc, enc2) || bytes.Equal(ct, ct2) {
				t.Error("two encryptions of the same plaintext share a KEM output or ciphertext")
			}
			decrypt := func(what string, priv []byte, label string, ctx, enc, ct []byte) {
				t.Helper()
				_, err := s.DecryptWithLabel(priv, label, ctx, enc, ct)
				scExpectErr(t, what, err)
			}
			decrypt("wrong label", priv, "UpdatePathNodE", ctx, enc, ct)
			decrypt("empty label", priv, "", ctx, enc, ct)
			decrypt("wrong context", priv, label, scFlip(ctx, 0), enc, ct)
			decrypt("empty context", priv, label, nil, enc, ct)
			decrypt("wrong private key", priv2, label, ctx, enc, ct)
			decrypt("KEM output of another encryption", priv, label, ctx, enc2, ct)
			decrypt("ciphertext of another encryption", priv, label, ctx, enc, ct2)
			for _, i := range []int{0, len(ct) / 2, len(ct) - 1} {
				decrypt("tampered ciphertext byte "+strconv.Itoa(i), priv, label, ctx, enc, scFlip(ct, i))
			}
			for _, i := range []int{0, len(enc) / 2, len(enc) - 1} {
				decrypt("tampered KEM output byte "+strconv.Itoa(i), priv, label, ctx, scFlip(enc, i), ct)
			}
			for name, bad := range scMalformedLengths(ct) {
				decrypt(name+" ciphertext", priv, label, ctx, enc, bad)
			}
			for name, bad := range scMalformedLengths(enc) {
				decrypt(name+" KEM output", priv, label, ctx, bad, ct)
			}
			rng := rand.New(rand.NewPCG(1, uint64(s.ID)))
			garbage := make([]byte, len(enc))
			for i := range garbage {
				garbage[i] = byte(rng.Uint32())
			}
			for name, bad := range map[string][]byte{"zero": make([]byte, len(enc)), "0xff": scFill(len(enc), 0xff), "random": garbage} {
				decrypt(name+" KEM output", priv, label, ctx, bad, ct)
			}

			// SealBase/OpenBase bind info and aad; MLS always passes an
			// empty aad, but the primitive must still honour it.
			info, aad := []byte("info"), []byte("aad")
			enc, ct, err = s.SealBase(pub, info, aad, pt)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.OpenBase(enc, priv, info, aad, ct); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("SealBase/OpenBase round trip: %x, %v", got, err)
			}
			_, err = s.OpenBase(enc, priv, info, []byte("aaD"), ct)
			scExpectErr(t, "wrong aad", err)
			_, err = s.OpenBase(enc, priv, info, nil, ct)
			scExpectErr(t, "missing aad", err)
			_, err = s.OpenBase(enc, priv, []byte("infO"), aad, ct)
			scExpectErr(t, "wrong info", err)

			for name, bad := range scMalformedLengths(pub) {
				_, _, err := s.EncryptWithLabel(bad, label, ctx, pt)
				scExpectErr(t, "encrypt to "+name+" public key", err)
			}
			for name, bad := range scInvalidHPKEPublicKeys(s, pub) {
				_, _, err := s.EncryptWithLabel(bad, label, ctx, pt)
				scExpectErr(t, "encrypt to "+name+" public key", err)
			}
			for name, bad := range scMalformedPrivateKeys(priv, s.nistScalarSize() > 0) {
				decrypt(name+" private key", bad, label, ctx, enc, ct)
				_, err := s.HPKEPublicKey(bad)
				scExpectErr(t, "HPKEPublicKey of "+name+" private key", err)
			}
			if s.KEMID == kemDHKEMP256 || s.KEMID == kemDHKEMP384 || s.KEMID == kemDHKEMP521 {
				for name, bad := range map[string][]byte{"zero": make([]byte, len(priv)), "0xff": scFill(len(priv), 0xff)} {
					_, err := s.HPKEPublicKey(bad)
					scExpectErr(t, "HPKEPublicKey of "+name+" scalar", err)
					decrypt(name+" scalar", bad, label, ctx, enc, ct)
				}
			}
		})
	}
}

// scInvalidHPKEPublicKeys returns public keys of the right length that the
// KEM must refuse. Which byte patterns are invalid depends on the KEM: any
// 32 bytes are an X25519 key and all-zero is a valid ML-KEM key, so each
// KEM gets the patterns that are invalid for it.
func scInvalidHPKEPublicKeys(s *CipherSuite, pub []byte) map[string][]byte {
	n := len(pub)
	switch s.KEMID {
	case kemDHKEMX25519, kemDHKEMX448:
		// u = 0 and u = 1 are of small order: the DH output is all zero,
		// which RFC 9180 section 7.1.4 makes an error.
		one := make([]byte, n)
		one[0] = 1
		return map[string][]byte{"zero (small order)": make([]byte, n), "one (small order)": one}
	case kemDHKEMP256, kemDHKEMP384, kemDHKEMP521:
		off := bytes.Clone(pub)
		off[n-1] ^= 1 // same x, wrong y: off the curve
		compressed := append([]byte{0x02}, make([]byte, n-1)...)
		return map[string][]byte{
			"zero": make([]byte, n), "0xff": scFill(n, 0xff), "off-curve": off,
			"0x04 then zeros": append([]byte{0x04}, make([]byte, n-1)...), "bad prefix": compressed,
		}
	case kemMLKEM768, kemMLKEM768X25519:
		// 0xfff coefficients are >= q, which FIPS 203's modulus check
		// (and so crypto/mlkem) rejects.
		return map[string][]byte{"0xff": scFill(n, 0xff)}
	}
	return nil
}

func TestSuiteCryptoDeriveHPKEKeyPair(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			scNoVectorsNote(t, s)
			want := scExpectedSizes[s.ID]
			pubs := map[string]int{}
			// Nh is what MLS passes (path secrets, init secrets); the other
			// lengths show nothing in the stack insists on Nsk.
			lengths := []int{s.Nh()}
			for _, n := range []int{1, 16, 32, want.nsk, 100} {
				if !slices.Contains(lengths, n) {
					lengths = append(lengths, n)
				}
			}
			for _, n := range lengths {
				ikm := make([]byte, n)
				for i := range ikm {
					ikm[i] = byte(i*7 + n)
				}
				priv, pub, err := s.DeriveHPKEKeyPair(ikm)
				if err != nil {
					t.Fatalf("%d-byte ikm: %v", n, err)
				}
				if len(priv) != want.nsk || len(pub) != want.npk {
					t.Fatalf("%d-byte ikm: key sizes %d, %d; want %d, %d", n, len(priv), len(pub), want.nsk, want.npk)
				}
				priv2, pub2, err := s.DeriveHPKEKeyPair(bytes.Clone(ikm))
				if err != nil || !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
					t.Fatalf("%d-byte ikm: derivation is not deterministic (%v)", n, err)
				}
				if got, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(got, pub) {
					t.Fatalf("%d-byte ikm: HPKEPublicKey(priv) = %x, %v; want %x", n, got, err, pub)
				}
				if prev, dup := pubs[string(pub)]; dup {
					t.Fatalf("%d-byte and %d-byte ikm derive the same key", prev, n)
				}
				pubs[string(pub)] = n
				enc, ct, err := s.EncryptWithLabel(pub, "l", nil, []byte("x"))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := s.DecryptWithLabel(priv, "l", nil, enc, ct); err != nil || string(got) != "x" {
					t.Fatalf("%d-byte ikm: derived key does not decrypt: %v", n, err)
				}
				// One changed bit of ikm gives an unrelated key.
				_, pub3, err := s.DeriveHPKEKeyPair(scFlip(ikm, n-1))
				if err != nil || bytes.Equal(pub, pub3) {
					t.Fatalf("%d-byte ikm: flipping a bit did not change the key (%v)", n, err)
				}
			}
		})
	}
}

// TestSuiteCryptoX448DeriveMatchesCIRCL checks our RFC 9180 DeriveKeyPair
// for X448 against CIRCL's at the one ikm length CIRCL accepts (Nsk).
func TestSuiteCryptoX448DeriveMatchesCIRCL(t *testing.T) {
	s, err := Suite(MLS256DHKEMX448AES256GCMSHA512Ed448)
	if err != nil {
		t.Fatal(err)
	}
	scheme := circlhpke.KEM_X448_HKDF_SHA512.Scheme()
	for i := range 8 {
		seed := make([]byte, scheme.SeedSize())
		for j := range seed {
			seed[j] = byte(i*31 + j)
		}
		cpk, csk := scheme.DeriveKeyPair(seed)
		wantPub, _ := cpk.MarshalBinary()
		wantPriv, _ := csk.MarshalBinary()
		x448Clamp(wantPriv) // CIRCL serializes unclamped
		priv, pub, err := s.DeriveHPKEKeyPair(seed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pub, wantPub) || !bytes.Equal(priv, wantPriv) {
			t.Fatalf("seed %x:\n ours  %x / %x\n circl %x / %x", seed, priv, pub, wantPriv, wantPub)
		}
	}
}

// TestSuiteCryptoRandomInputs throws random bytes of lengths around the
// valid ones at every entry point that parses outside input: each must
// answer with a clean error (or, where the bytes happen to be a valid key,
// a result), never a panic.
func TestSuiteCryptoRandomInputs(t *testing.T) {
	for _, s := range Suites() {
		t.Run(s.Name, func(t *testing.T) {
			want := scExpectedSizes[s.ID]
			rng := rand.New(rand.NewPCG(2, uint64(s.ID)))
			random := func(around int) []byte {
				n := around + rng.IntN(5) - 2
				if n < 0 {
					n = 0
				}
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				return b
			}
			clean := func(what string, err error) {
				t.Helper()
				if err != nil && (!strings.HasPrefix(err.Error(), "mls: ") || strings.Contains(err.Error(), "internal failure")) {
					t.Errorf("%s: %v", what, err)
				}
			}
			priv, _, err := s.GenerateHPKEKeyPair()
			if err != nil {
				t.Fatal(err)
			}
			for range 40 {
				_, err := s.OpenBase(random(want.nenc), priv, nil, nil, random(24))
				scExpectErr(t, "OpenBase of random input", err)
				_, err = s.OpenBase(random(want.nenc), random(want.nsk), nil, nil, random(24))
				scExpectErr(t, "OpenBase with random key", err)
				_, _, err = s.SealBase(random(want.npk), nil, nil, nil)
				clean("SealBase to random key", err)
				_, err = s.HPKEPublicKey(random(want.nsk))
				clean("HPKEPublicKey of random key", err)
				_, err = s.SignaturePublicKey(random(want.sigPriv))
				clean("SignaturePublicKey of random key", err)
				_, err = s.Sign(random(want.sigPriv), []byte("m"))
				clean("Sign with random key", err)
				scExpectErr(t, "Verify of random input", s.Verify(random(want.sigPub), []byte("m"), random(want.maxSig)))
			}
		})
	}
}
