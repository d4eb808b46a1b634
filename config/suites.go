package config

import (
	"fmt"
	"strings"

	"github.com/current-vpn/current/session/mls"
)

// DefaultSuite is the hybrid post-quantum suite (X-Wing KEM, Ed25519
// signatures): post-quantum confidentiality today, while keeping the short
// classical identity keys that people copy between machines.
const DefaultSuite = mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519

// suiteNames are the names configuration files and key files use. They are
// part of the file formats: never rename one, only add. They are shorter
// than the RFC names and say what an operator chooses between: the KEM, the
// AEAD and the signature algorithm (which is also the identity key type).
var suiteNames = []struct {
	id   mls.CipherSuiteID
	name string
}{
	{mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519, "mls-xwing-ed25519"},
	{mls.MLS192MLKEM768AES256GCMSHA384MLDSA65, "mls-mlkem768-mldsa65"},
	{mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, "mls-x25519-aes128-ed25519"},
	{mls.MLS128DHKEMP256AES128GCMSHA256P256, "mls-p256-aes128-p256"},
	{mls.MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519, "mls-x25519-chacha-ed25519"},
	{mls.MLS256DHKEMX448AES256GCMSHA512Ed448, "mls-x448-aes256-ed448"},
	{mls.MLS256DHKEMP521AES256GCMSHA512P521, "mls-p521-aes256-p521"},
	{mls.MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448, "mls-x448-chacha-ed448"},
	{mls.MLS256DHKEMP384AES256GCMSHA384P384, "mls-p384-aes256-p384"},
}

// SuiteByName returns the cipher suite with the given configuration name,
// such as "mls-xwing-ed25519". Names are matched exactly: they are
// identifiers in files that scripts also read, so one spelling each.
func SuiteByName(name string) (mls.CipherSuiteID, error) {
	for _, s := range suiteNames {
		if s.name == name {
			return s.id, nil
		}
	}
	return 0, fmt.Errorf("unknown suite %q (known suites: %s)", name, strings.Join(SuiteNames(), ", "))
}

// SuiteName returns the configuration name of a cipher suite, or a
// hexadecimal placeholder for a code point without one, so that error
// messages about a foreign suite still say which it was.
func SuiteName(id mls.CipherSuiteID) string {
	for _, s := range suiteNames {
		if s.id == id {
			return s.name
		}
	}
	return fmt.Sprintf("suite-%#04x", uint16(id))
}

// SuiteNames lists every suite name, the default first.
func SuiteNames() []string {
	out := make([]string, len(suiteNames))
	for i, s := range suiteNames {
		out[i] = s.name
	}
	return out
}

func knownSuite(id mls.CipherSuiteID) bool {
	for _, s := range suiteNames {
		if s.id == id {
			_, err := mls.Suite(id)
			return err == nil
		}
	}
	return false
}
