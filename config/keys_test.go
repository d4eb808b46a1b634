package config

import (
	"bytes"
	"crypto/elliptic"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/current-vpn/current/session/mls"
)

func TestSuiteNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range mls.Suites() {
		name := SuiteName(s.ID)
		if strings.HasPrefix(name, "suite-") {
			t.Errorf("suite %s has no configuration name", s.Name)
		}
		if seen[name] {
			t.Errorf("name %q used twice", name)
		}
		seen[name] = true
		id, err := SuiteByName(name)
		if err != nil || id != s.ID {
			t.Errorf("SuiteByName(%q) = %#04x, %v; want %#04x", name, id, err, s.ID)
		}
	}
	if len(SuiteNames()) != len(mls.Suites()) {
		t.Errorf("%d names for %d suites", len(SuiteNames()), len(mls.Suites()))
	}
	// The names are a file format: pin them.
	want := map[mls.CipherSuiteID]string{
		0xF001: "mls-xwing-ed25519", 0xF00A: "mls-mlkem768-mldsa65",
		0x0001: "mls-x25519-aes128-ed25519", 0x0002: "mls-p256-aes128-p256",
		0x0003: "mls-x25519-chacha-ed25519", 0x0004: "mls-x448-aes256-ed448",
		0x0005: "mls-p521-aes256-p521", 0x0006: "mls-x448-chacha-ed448",
		0x0007: "mls-p384-aes256-p384",
	}
	for id, name := range want {
		if got := SuiteName(id); got != name {
			t.Errorf("SuiteName(%#04x) = %q, want %q", uint16(id), got, name)
		}
	}
	if SuiteNames()[0] != SuiteName(DefaultSuite) || DefaultSuite != 0xF001 {
		t.Error("the default suite must be 0xF001 and listed first")
	}
	if _, err := SuiteByName("MLS-XWING-ED25519"); err == nil {
		t.Error("suite names must match exactly")
	}
	if got := SuiteName(0x1234); got != "suite-0x1234" {
		t.Errorf("SuiteName(0x1234) = %q", got)
	}
}

func TestKeyRoundTripEverySuite(t *testing.T) {
	for _, s := range mls.Suites() {
		t.Run(SuiteName(s.ID), func(t *testing.T) {
			k, err := GeneratePrivateKey(s.ID)
			if err != nil {
				t.Fatal(err)
			}
			text := k.String()
			if !strings.HasPrefix(text, "current-private-key:"+SuiteName(s.ID)+":") {
				t.Errorf("private key text %q", text)
			}
			k2, err := ParsePrivateKey(text + "\n")
			if err != nil {
				t.Fatal(err)
			}
			if k2.Suite() != s.ID || !bytes.Equal(k2.Bytes(), k.Bytes()) || k2.String() != text {
				t.Error("private key round trip changed the key")
			}

			pub, err := k.Public()
			if err != nil {
				t.Fatal(err)
			}
			raw, err := s.SignaturePublicKey(k.Bytes())
			if err != nil || !bytes.Equal(raw, pub.Bytes()) {
				t.Errorf("Public() disagrees with session/mls: %v", err)
			}
			pub2, err := ParsePublicKey(pub.String())
			if err != nil {
				t.Fatal(err)
			}
			if !pub2.Equal(pub) || pub2.String() != pub.String() || pub2.Scheme() != s.Signature {
				t.Error("public key round trip changed the key")
			}
			if err := pub.CheckSuite(s.ID); err != nil {
				t.Error(err)
			}
			var viaText PublicKey
			if b, _ := pub.MarshalText(); viaText.UnmarshalText(b) != nil || !viaText.Equal(pub) {
				t.Error("MarshalText/UnmarshalText round trip failed")
			}

			// The key signs and the public key verifies, through session/mls.
			sig, err := s.Sign(k.Bytes(), []byte("msg"))
			if err != nil || s.Verify(pub.Bytes(), []byte("msg"), sig) != nil {
				t.Errorf("sign/verify with the parsed keys: %v", err)
			}
		})
	}
}

func TestPublicKeyLength(t *testing.T) {
	k := exampleKey(t, "a")
	pub, _ := k.Public()
	// Short enough to paste: 8 characters more than a WireGuard key.
	if n := len(pub.String()); n != 52 {
		t.Errorf("default-suite public key is %d characters, want 52", n)
	}
}

func TestCheckSuite(t *testing.T) {
	pub := examplePublic(t, "a") // Ed25519
	for _, id := range []mls.CipherSuiteID{0x0001, 0x0003, 0xF001} {
		if err := pub.CheckSuite(id); err != nil {
			t.Errorf("Ed25519 key with %s: %v", SuiteName(id), err)
		}
	}
	for _, id := range []mls.CipherSuiteID{0x0002, 0x0004, 0x0005, 0x0006, 0x0007, 0xF00A, 0x9999} {
		if err := pub.CheckSuite(id); err == nil {
			t.Errorf("Ed25519 key accepted for %s", SuiteName(id))
		}
	}
}

func TestParsePrivateKeyRejects(t *testing.T) {
	good := exampleKey(t, "a").String()
	_, enc, _ := strings.Cut(strings.TrimPrefix(good, PrivateKeyPrefix), ":")
	b64std := base64.StdEncoding
	p256Order := b64std.EncodeToString(elliptic.P256().Params().N.FillBytes(make([]byte, 32))) // out of range
	tests := []struct {
		name, text, msg string
	}{
		{"empty", "", "not a current private key"},
		{"garbage", "hello world", "not a current private key"},
		{"public key", examplePublic(t, "a").String(), "this is a public key"},
		{"no suite", PrivateKeyPrefix + enc, "no suite name"},
		{"unknown suite", PrivateKeyPrefix + "mls-foo:" + enc, `unknown suite "mls-foo"`},
		{"bad base64", PrivateKeyPrefix + "mls-xwing-ed25519:" + enc[:10] + "*" + enc[11:], "invalid base64"},
		{"unpadded", PrivateKeyPrefix + "mls-xwing-ed25519:" + strings.TrimRight(enc, "="), "invalid base64"},
		{"non-canonical base64", PrivateKeyPrefix + "mls-xwing-ed25519:" + enc[:len(enc)-2] + "B=", "invalid base64"},
		{"short", PrivateKeyPrefix + "mls-xwing-ed25519:" + b64std.EncodeToString(make([]byte, 31)), "must be 32 bytes, got 31"},
		{"long", PrivateKeyPrefix + "mls-xwing-ed25519:" + b64std.EncodeToString(make([]byte, 33)), "must be 32 bytes, got 33"},
		{"two lines", good + "\n" + good, "invalid base64"},
		{"line break inside", PrivateKeyPrefix + "mls-xwing-ed25519:" + enc[:10] + "\n" + enc[10:], "invalid base64"},
		{"trailing garbage", good + " x", "invalid base64"},
		{"ECDSA scalar out of range", PrivateKeyPrefix + "mls-p256-aes128-p256:" + p256Order, "invalid private key"},
		{"ECDSA short scalar", PrivateKeyPrefix + "mls-p256-aes128-p256:" + b64std.EncodeToString([]byte{1}), "must be 32 bytes"},
		{"ML-DSA expanded key", PrivateKeyPrefix + "mls-mlkem768-mldsa65:" + b64std.EncodeToString(make([]byte, 4032)), "must be 32 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrivateKey(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ParsePrivateKey: %v, want %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), enc[:20]) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
	// Surrounding white space is fine; tampering with the bits yields a
	// different, valid key (nothing in 32 random bytes can tell), which
	// pinning then rejects.
	if _, err := ParsePrivateKey("  " + good + "\r\n"); err != nil {
		t.Error(err)
	}
}

func TestParsePublicKeyRejects(t *testing.T) {
	good := examplePublic(t, "a").String()
	enc := strings.TrimPrefix(good, "ed25519:")
	mk, _ := GeneratePrivateKey(mls.MLS256DHKEMP384AES256GCMSHA384P384)
	p384, _ := mk.Public()
	p384raw := p384.Bytes()
	p384raw[len(p384raw)-1] ^= 1 // off the curve
	tests := []struct{ name, text, msg string }{
		{"empty", "", "malformed public key"},
		{"no algorithm", enc, "want <algorithm>:<base64>"},
		{"unknown algorithm", "x25519:" + enc, `unknown algorithm "x25519"`},
		{"upper case", "ED25519:" + enc, `unknown algorithm "ED25519"`},
		{"bad base64", "ed25519:" + enc[:5] + "!" + enc[6:], "invalid base64"},
		{"non-canonical base64", "ed25519:" + enc[:len(enc)-2] + "d=", "invalid base64"},
		{"short", "ed25519:" + enc[:40] + "==", "invalid base64"},
		// encoding/base64 skips line breaks even in strict mode, which
		// would give a key a second text form (docs/protocol.md 7.3.1).
		{"line break", "ed25519:" + enc[:20] + "\n" + enc[20:], "invalid base64"},
		{"carriage return", "ed25519:" + enc[:20] + "\r" + enc[20:], "invalid base64"},
		{"wrong length", "ed25519:" + base64.StdEncoding.EncodeToString(make([]byte, 57)), "57 bytes, want 32"},
		{"ed448 length", "ed448:" + enc, "32 bytes, want 57"},
		{"ECDSA off curve", "p384:" + base64.StdEncoding.EncodeToString(p384raw), "invalid p384 public key"},
		{"ECDSA compressed", "p256:" + base64.StdEncoding.EncodeToString(append([]byte{2}, make([]byte, 64)...)), "invalid p256 public key"},
		{"ML-DSA short", "mldsa65:" + base64.StdEncoding.EncodeToString(make([]byte, 1951)), "1951 bytes, want 1952"},
		{"private key", exampleKey(t, "a").String(), "this is a private key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePublicKey(tc.text); err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ParsePublicKey(%.30q): %v, want %q", tc.text, err, tc.msg)
			}
		})
	}
	if _, err := ParsePublicKey(" " + good + "\n"); err != nil {
		t.Error(err)
	}
}

func TestPrivateKeyRedacted(t *testing.T) {
	k := exampleKey(t, "a")
	_, secret, _ := strings.Cut(strings.TrimPrefix(k.String(), PrivateKeyPrefix), ":")
	c := Config{Interface: Interface{PrivateKey: k}}
	for _, s := range []string{
		fmt.Sprint(k), fmt.Sprintf("%s %v %+v %#v %q %x", k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v", c, c, c), fmt.Sprintf("%v", &c),
	} {
		if strings.Contains(s, secret) || strings.Contains(s, secret[:12]) {
			t.Errorf("fmt output leaks the private key: %s", s)
		}
		if !strings.Contains(s, "redacted") {
			t.Errorf("fmt output does not say redacted: %s", s)
		}
	}
	if got := fmt.Sprint(PrivateKey{}); got != "PrivateKey(none)" {
		t.Errorf("zero key prints %q", got)
	}
}

func TestPrivateKeyZero(t *testing.T) {
	k, err := GeneratePrivateKey(DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	b := k.Bytes()
	b[0] ^= 0xff // Bytes is a copy
	if bytes.Equal(b, k.Bytes()) {
		t.Error("Bytes returned the key's own storage")
	}
	alias := k
	k.Zero()
	if !bytes.Equal(alias.Bytes(), make([]byte, 32)) {
		t.Error("Zero did not clear the key")
	}
}

func TestPrivateKeyFile(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	dir := t.TempDir()
	path := filepath.Join(dir, "k.key")
	// Replacing a world-readable file yields a 0600 one, not a chmod of it.
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, s := range mls.Suites() {
		k, err := GeneratePrivateKey(s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := WritePrivateKeyFile(path, k); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %04o", fi.Mode().Perm())
		}
		data, _ := os.ReadFile(path)
		if string(data) != k.String()+"\n" {
			t.Errorf("key file holds %q", data)
		}
		k2, err := LoadPrivateKeyFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if k2.Suite() != k.Suite() || !bytes.Equal(k2.Bytes(), k.Bytes()) {
			t.Error("key file round trip changed the key")
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	if err := WritePrivateKeyFile(filepath.Join(dir, "no", "such", "dir"), exampleKey(t, "a")); err == nil {
		t.Error("WritePrivateKeyFile into a missing directory succeeded")
	}
	if err := WritePrivateKeyFile(path, PrivateKey{}); err == nil {
		t.Error("WritePrivateKeyFile wrote a zero key")
	}

	big := filepath.Join(dir, "big.key")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), maxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKeyFile(big); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("large key file: %v", err)
	}
	// A FIFO must be refused, not waited on for a writer.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPrivateKeyFile(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO as key file: %v", err)
	}
	if _, err := Load(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO as config file: %v", err)
	}
	if _, err := LoadPrivateKeyFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory as key file: %v", err)
	}
}
