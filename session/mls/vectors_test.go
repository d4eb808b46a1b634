package mls

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// vectorFiles lists every official interop vector file, in the order the
// subtests of TestVectors run.
var vectorFiles = []string{
	"tree-math",
	"crypto-basics",
	"secret-tree",
	"message-protection",
	"key-schedule",
	"psk_secret",
	"transcript-hashes",
	"deserialization",
	"messages",
	"welcome",
	"tree-operations",
	"tree-validation",
	"treekem",
	"passive-client-welcome",
	"passive-client-handling-commit",
	"passive-client-random",
}

// vectorCheckers maps a vector file (without .json) to the function that
// verifies it as test-vectors.md prescribes. Each *_vectors_test.go file
// registers its checkers from init, so no single file has to know them all.
var vectorCheckers = map[string]func(t *testing.T, data []byte){}

// vectorsNotYetChecked names the files no checker verifies yet, with the
// reason printed in the test output. A file listed here is reported as
// skipped, never as passed.
var vectorsNotYetChecked = map[string]string{}

func registerVectorChecker(name string, check func(t *testing.T, data []byte)) {
	if _, dup := vectorCheckers[name]; dup {
		panic("vector checker registered twice: " + name)
	}
	vectorCheckers[name] = check
}

// vectorDir finds the official vectors: $MLS_VECTORS, or ../shared/mls-vectors
// relative to the repository root (the directory holding go.mod).
func vectorDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("MLS_VECTORS"); dir != "" {
		return dir
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "..", "shared", "mls-vectors")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (go.mod) to locate ../shared/mls-vectors; set MLS_VECTORS")
		}
		dir = parent
	}
}

func TestVectors(t *testing.T) {
	for name := range vectorCheckers {
		if !containsValue(vectorFiles, name) {
			t.Errorf("checker for %s.json is registered but never run", name)
		}
	}
	dir := vectorDir(t)
	for _, name := range vectorFiles {
		t.Run(name, func(t *testing.T) {
			check, ok := vectorCheckers[name]
			if !ok {
				if reason, pending := vectorsNotYetChecked[name]; pending {
					t.Skipf("NOT CHECKED: %s.json: %s", name, reason)
				}
				t.Fatalf("no checker for %s.json", name)
			}
			if _, pending := vectorsNotYetChecked[name]; pending {
				t.Fatalf("%s is both checked and listed as not yet checked", name)
			}
			data, err := os.ReadFile(filepath.Join(dir, name+".json"))
			if err != nil {
				t.Fatalf("reading vector file: %v", err)
			}
			check(t, data)
		})
	}
}

// hexBytes is a hex-encoded byte string in a vector file.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == nil {
		*h = nil
		return nil
	}
	v, err := hex.DecodeString(*s)
	if err != nil {
		return fmt.Errorf("bad hex in vector: %w", err)
	}
	*h = v
	return nil
}

// decodeVectors unmarshals a vector file's JSON array into a slice of T,
// failing the test on malformed JSON or an empty file.
func decodeVectors[T any](t *testing.T, data []byte) []T {
	t.Helper()
	var cases []T
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatalf("decoding vector JSON: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("vector file holds no test case")
	}
	return cases
}

// mustSuite returns the cipher suite for a vector's cipher_suite field,
// failing (never skipping) when the suite is unsupported.
func mustSuite(t *testing.T, id uint16) *CipherSuite {
	t.Helper()
	s, err := Suite(CipherSuiteID(id))
	if err != nil {
		t.Fatalf("vector uses cipher suite %#04x: %v", id, err)
	}
	return s
}
