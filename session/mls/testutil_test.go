package mls

import (
	"bytes"
	"strconv"
	"testing"
)

func itoa(i int) string { return strconv.Itoa(i) }

// expectEqual fails the test when got differs from want, printing both in hex.
// A nil want means the vector lacks the field, which is itself an error: the
// checks must never pass by comparing nothing.
func expectEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if want == nil {
		t.Errorf("%s: vector has no value to compare against", what)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n got  %x\n want %x", what, got, want)
	}
}
