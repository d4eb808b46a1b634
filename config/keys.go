package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/current-vpn/current/internal/atomicfile"
	"github.com/current-vpn/current/internal/secretfile"
	"github.com/current-vpn/current/session/mls"
)

// Key text formats (summarised in the package documentation).
//
// A peer's identity is its MLS signature public key, so the two formats
// carry exactly that key, in the raw encodings of session/mls (see
// signature.go there), in standard base64 with padding (RFC 4648 section 4),
// as WireGuard writes its keys.
//
// Private key file: one line, newline-terminated,
//
//	current-private-key:mls-xwing-ed25519:+IlYRNsDnymrGIIambAe1WvAvfQeJu5rzRG039bW17M=
//
// The prefix makes the file recognisable (and greppable by secret scanners);
// the suite name records what `currentctl genkey --suite` was asked for, so a
// key never silently serves a suite it was not made for, and the public key
// can be derived from the file alone. Load insists that it equal
// interface.suite: a mismatch means the key and the configuration were made
// for different setups. Moving a link to another suite with the same
// signature algorithm only needs the suite name in the file changed; the
// key, and so every peer's pin, stays the same.
//
// Public key text (of that private key, the example key "site-a" of
// configs/, whose seed is public):
//
//	ed25519:4Jk0tNYvIsXoPUV+vzKGOajve4V8pvty12yWpaDKIVc=
//
// The tag is the signature algorithm (ed25519, ed448, p256, p384, p521,
// mldsa65), not the suite. The key is an identity and the suite is a
// per-link choice: the same Ed25519 key serves mls-x25519-aes128-ed25519 and
// mls-xwing-ed25519 alike, and a suite tag would force every peer to re-pin
// a byte-identical key when a link moves to the post-quantum suite. What a
// peer's key does decide is which suites it can sign for, and the tag is
// enough to check that against the configured suite. For the default suite a
// public key is 52 characters, 8 more than a WireGuard key.

// PrivateKeyPrefix starts the text of every private key. Besides making key
// files recognisable, it is what log redaction looks for (ctl).
const PrivateKeyPrefix = "current-private-key:"

// b64 is strict so that every key has exactly one text form: keys are
// compared and looked up as identities, and a second spelling of the same
// key would slip past duplicate checks done on text by other tools.
//
// Strict still skips CR and LF inside the text, so the parsers refuse
// those themselves.
var b64 = base64.StdEncoding.Strict()

// sigAlg describes one signature algorithm's key encodings.
type sigAlg struct {
	scheme  mls.SignatureScheme
	name    string
	privLen int
	pubLen  int
	curve   func() elliptic.Curve // ECDSA only
}

var sigAlgs = []sigAlg{
	{mls.SigEd25519, "ed25519", 32, 32, nil},
	{mls.SigEd448, "ed448", 57, 57, nil},
	{mls.SigECDSAP256SHA256, "p256", 32, 65, elliptic.P256},
	{mls.SigECDSAP384SHA384, "p384", 48, 97, elliptic.P384},
	{mls.SigECDSAP521SHA512, "p521", 66, 133, elliptic.P521},
	{mls.SigMLDSA65, "mldsa65", 32, mldsa65.PublicKeySize, nil},
}

func algByScheme(s mls.SignatureScheme) (sigAlg, bool) {
	for _, a := range sigAlgs {
		if a.scheme == s {
			return a, true
		}
	}
	return sigAlg{}, false
}

func algByName(name string) (sigAlg, bool) {
	for _, a := range sigAlgs {
		if a.name == name {
			return a, true
		}
	}
	return sigAlg{}, false
}

// SignatureAlgorithmName returns the public key tag of a signature scheme,
// e.g. "ed25519".
func SignatureAlgorithmName(s mls.SignatureScheme) string {
	if a, ok := algByScheme(s); ok {
		return a.name
	}
	return fmt.Sprintf("scheme-%#04x", uint16(s))
}

func suiteAlg(id mls.CipherSuiteID) (sigAlg, error) {
	if !knownSuite(id) {
		return sigAlg{}, fmt.Errorf("unsupported suite %s", SuiteName(id))
	}
	s, err := mls.Suite(id)
	if err != nil {
		return sigAlg{}, err
	}
	a, ok := algByScheme(s.Signature)
	if !ok {
		return sigAlg{}, fmt.Errorf("suite %s: unsupported signature scheme %#04x", SuiteName(id), uint16(s.Signature))
	}
	return a, nil
}

// PrivateKey is our MLS signature private key and the suite it was made for.
//
// Copies share the key bytes, so Zero on any copy wipes them all. fmt
// prints a PrivateKey redacted; only String and WritePrivateKeyFile produce
// the secret, so that a key in a logged struct does not end up in a log.
type PrivateKey struct {
	suite mls.CipherSuiteID
	key   []byte
}

// GeneratePrivateKey returns a fresh signature key for the suite.
func GeneratePrivateKey(suite mls.CipherSuiteID) (PrivateKey, error) {
	if _, err := suiteAlg(suite); err != nil {
		return PrivateKey{}, err
	}
	s, err := mls.Suite(suite)
	if err != nil {
		return PrivateKey{}, err
	}
	priv, _, err := s.GenerateSignatureKeyPair()
	if err != nil {
		return PrivateKey{}, err
	}
	return PrivateKey{suite: suite, key: priv}, nil
}

// newPrivateKey takes ownership of raw after checking it is a valid key.
func newPrivateKey(suite mls.CipherSuiteID, raw []byte) (PrivateKey, error) {
	a, err := suiteAlg(suite)
	if err != nil {
		return PrivateKey{}, err
	}
	// Only the fixed-length encoding is accepted, although session/mls also
	// takes short ECDSA scalars: one text form per key.
	if len(raw) != a.privLen {
		return PrivateKey{}, fmt.Errorf("%s private key must be %d bytes, got %d", a.name, a.privLen, len(raw))
	}
	k := PrivateKey{suite: suite, key: raw}
	// Deriving the public key is the check that the scalar is in range.
	if _, err := k.Public(); err != nil {
		return PrivateKey{}, err
	}
	return k, nil
}

// ParsePrivateKey parses the private key file format. Surrounding white
// space (a trailing newline, a stray space from an editor) is ignored.
// Errors never quote the text, which may be a secret.
func ParsePrivateKey(text string) (PrivateKey, error) {
	return parsePrivateKey([]byte(text))
}

func parsePrivateKey(text []byte) (PrivateKey, error) {
	text = bytes.TrimSpace(text)
	rest, ok := bytes.CutPrefix(text, []byte(PrivateKeyPrefix))
	if !ok {
		if _, err := ParsePublicKey(string(text)); err == nil {
			return PrivateKey{}, errors.New("this is a public key, not a private key")
		}
		return PrivateKey{}, fmt.Errorf("not a current private key (it must start with %q)", PrivateKeyPrefix)
	}
	name, enc, ok := bytes.Cut(rest, []byte(":"))
	if !ok {
		return PrivateKey{}, errors.New("malformed private key: no suite name")
	}
	suite, err := SuiteByName(string(name))
	if err != nil {
		return PrivateKey{}, fmt.Errorf("private key: %w", err)
	}
	raw := make([]byte, b64.DecodedLen(len(enc)))
	n, err := b64.Decode(raw, enc)
	if err != nil || bytes.ContainsAny(enc, "\r\n") {
		clear(raw)
		return PrivateKey{}, errors.New("malformed private key: invalid base64")
	}
	raw = raw[:n]
	k, err := newPrivateKey(suite, raw)
	if err != nil {
		clear(raw)
		return PrivateKey{}, fmt.Errorf("invalid private key: %w", err)
	}
	return k, nil
}

// Suite returns the suite the key was generated for.
func (k PrivateKey) Suite() mls.CipherSuiteID { return k.suite }

// IsZero reports whether k holds no key.
func (k PrivateKey) IsZero() bool { return len(k.key) == 0 }

// Bytes returns a copy of the raw private key, in the encoding session/mls
// signs with. The caller should clear it when done.
func (k PrivateKey) Bytes() []byte { return bytes.Clone(k.key) }

// Zero overwrites the key bytes (best effort: Go may have copied them).
func (k PrivateKey) Zero() { clear(k.key) }

// Public derives the public key, which is what peers pin.
func (k PrivateKey) Public() (PublicKey, error) {
	if k.IsZero() {
		return PublicKey{}, errors.New("no private key")
	}
	a, err := suiteAlg(k.suite)
	if err != nil {
		return PublicKey{}, err
	}
	s, err := mls.Suite(k.suite)
	if err != nil {
		return PublicKey{}, err
	}
	pub, err := s.SignaturePublicKey(k.key)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{scheme: a.scheme, key: pub}, nil
}

// String returns the private key file format, without the newline. It is
// the secret itself.
func (k PrivateKey) String() string {
	b := k.appendText(nil)
	s := string(b)
	clear(b)
	return s
}

func (k PrivateKey) appendText(b []byte) []byte {
	b = append(b, PrivateKeyPrefix...)
	b = append(b, SuiteName(k.suite)...)
	b = append(b, ':')
	return b64.AppendEncode(b, k.key)
}

// Format redacts the key in fmt output (%v, %s, %+v ...); see PrivateKey.
func (k PrivateKey) Format(f fmt.State, _ rune) {
	if k.IsZero() {
		io.WriteString(f, "PrivateKey(none)")
		return
	}
	fmt.Fprintf(f, "PrivateKey(%s, redacted)", SuiteName(k.suite))
}

// PublicKey is an MLS signature public key: a peer's identity.
type PublicKey struct {
	scheme mls.SignatureScheme
	key    []byte
}

// ParsePublicKey parses the public key text format, e.g. "ed25519:<base64>".
func ParsePublicKey(text string) (PublicKey, error) {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, PrivateKeyPrefix) {
		// Say so rather than "unknown algorithm": pasting the wrong file is
		// the likely mistake, and the message must not echo the secret.
		return PublicKey{}, errors.New("this is a private key; use the output of `currentctl pubkey` instead, and treat this key as leaked if it was shared")
	}
	name, enc, ok := strings.Cut(text, ":")
	if !ok {
		return PublicKey{}, fmt.Errorf("malformed public key: want <algorithm>:<base64>, e.g. ed25519:%s", strings.Repeat("A", 43)+"=")
	}
	a, ok := algByName(name)
	if !ok {
		names := make([]string, len(sigAlgs))
		for i, a := range sigAlgs {
			names[i] = a.name
		}
		return PublicKey{}, fmt.Errorf("malformed public key: unknown algorithm %q (want one of %s)", name, strings.Join(names, ", "))
	}
	raw, err := b64.DecodeString(enc)
	if err != nil || strings.ContainsAny(enc, "\r\n") {
		return PublicKey{}, fmt.Errorf("malformed %s public key: invalid base64", a.name)
	}
	return newPublicKey(a, raw)
}

func newPublicKey(a sigAlg, raw []byte) (PublicKey, error) {
	if len(raw) != a.pubLen {
		return PublicKey{}, fmt.Errorf("invalid %s public key: %d bytes, want %d", a.name, len(raw), a.pubLen)
	}
	// Reject what session/mls would refuse anyway, now rather than at the
	// first handshake. Ed25519 and Ed448 points are not decoded here: the
	// standard library exposes no point check, and a bad point only means
	// that no signature will ever verify.
	switch {
	case a.curve != nil:
		if _, err := ecdsa.ParseUncompressedPublicKey(a.curve(), raw); err != nil {
			return PublicKey{}, fmt.Errorf("invalid %s public key: %v", a.name, err)
		}
	case a.scheme == mls.SigMLDSA65:
		var pk mldsa65.PublicKey
		if err := pk.UnmarshalBinary(raw); err != nil {
			return PublicKey{}, fmt.Errorf("invalid %s public key: %v", a.name, err)
		}
	}
	return PublicKey{scheme: a.scheme, key: raw}, nil
}

// String returns the public key text format.
func (k PublicKey) String() string {
	if k.IsZero() {
		return ""
	}
	a, _ := algByScheme(k.scheme)
	return a.name + ":" + b64.EncodeToString(k.key)
}

// MarshalText implements encoding.TextMarshaler.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *PublicKey) UnmarshalText(text []byte) error {
	p, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// IsZero reports whether k holds no key.
func (k PublicKey) IsZero() bool { return len(k.key) == 0 }

// Scheme returns the signature scheme of the key.
func (k PublicKey) Scheme() mls.SignatureScheme { return k.scheme }

// Bytes returns a copy of the raw key, as session/mls and MLS credentials
// carry it.
func (k PublicKey) Bytes() []byte { return bytes.Clone(k.key) }

// Equal reports whether k and o are the same key.
func (k PublicKey) Equal(o PublicKey) bool {
	return k.scheme == o.scheme && bytes.Equal(k.key, o.key)
}

// CheckSuite reports whether the key can sign in the given suite, i.e.
// whether the suite's signature scheme is the key's.
func (k PublicKey) CheckSuite(suite mls.CipherSuiteID) error {
	a, err := suiteAlg(suite)
	if err != nil {
		return err
	}
	if a.scheme != k.scheme {
		return fmt.Errorf("%s key cannot be used with suite %s, which signs with %s",
			SignatureAlgorithmName(k.scheme), SuiteName(suite), a.name)
	}
	return nil
}

// maxKeyFileSize bounds what LoadPrivateKeyFile reads: the longest key line
// (P-521) is well under 200 bytes, and a wrong path must not make us read a
// huge file.
const maxKeyFileSize = 4096

// LoadPrivateKeyFile reads a private key file. It refuses a file that is
// not a regular file or that group or others may access in any way: such a
// key must be presumed known to them, and refusing to start is the only
// way to make the mistake visible before it matters. Symbolic links are
// followed (secret stores mount keys that way); the mode checked is the
// target's, on the very file that is then read.
func LoadPrivateKeyFile(path string) (PrivateKey, error) {
	buf, err := secretfile.Read(path, maxKeyFileSize)
	defer clear(buf)
	var loose *secretfile.LooseError
	switch {
	case errors.Is(err, os.ErrNotExist):
		return PrivateKey{}, &wrapError{fmt.Sprintf("key file %s does not exist (generate one with currentctl genkey)", path), err}
	case errors.Is(err, secretfile.ErrNotRegular):
		return PrivateKey{}, fmt.Errorf("key file %s is not a regular file", path)
	case errors.As(err, &loose):
		return PrivateKey{}, fmt.Errorf("key file %s has mode %04o; it must be 0600 (chmod 600 %s)", path, loose.Mode, path)
	case errors.Is(err, secretfile.ErrTooLarge):
		return PrivateKey{}, fmt.Errorf("key file %s is too large to be a key file", path)
	case err != nil:
		return PrivateKey{}, fmt.Errorf("key file: %w", err)
	}
	k, err := parsePrivateKey(buf)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// openNonBlocking opens path for reading without blocking on a FIFO (which
// would wait for a writer forever), so that the regular-file check on the
// open file can refuse it.
func openNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// wrapError words an error for people while keeping the cause for
// errors.Is (os.ErrNotExist, permission errors).
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

// WritePrivateKeyFile writes key to path with mode 0600, replacing any
// existing file. It writes a temporary file in the same directory and
// renames it over path, so a crash leaves either the old key or the new
// one, never a truncated file, and the key is never readable by others,
// not even briefly.
func WritePrivateKeyFile(path string, key PrivateKey) error {
	if key.IsZero() {
		return errors.New("no private key to write")
	}
	text := key.appendText(make([]byte, 0, 256))
	text = append(text, '\n')
	defer clear(text)
	if err := atomicfile.WriteFile(path, text, 0o600); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	return nil
}
