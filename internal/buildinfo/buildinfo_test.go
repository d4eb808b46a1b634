package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	v, c := Version, Commit
	defer func() { Version, Commit = v, c }()

	Version, Commit = "v1.2.3-1-gabcdef0-dirty", "abcdef0"
	got := String()
	want := "v1.2.3-1-gabcdef0-dirty (commit abcdef0, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	if got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	// -X with an empty value must not give a banner with holes in it.
	Version, Commit = "", ""
	if got := String(); !strings.HasPrefix(got, "dev (commit unknown, ") {
		t.Errorf("String() with empty values = %q", got)
	}
}
