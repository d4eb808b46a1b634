// Package buildinfo holds the version and commit a binary was built from.
// Both are set at link time:
//
//	go build -ldflags "-X github.com/current-vpn/current/internal/buildinfo.Version=v0.3.0 \
//	    -X github.com/current-vpn/current/internal/buildinfo.Commit=8ccdab5" ./cmd/...
//
// packaging/package.mk does this from `git describe --tags --always --dirty`
// and `git rev-parse --short HEAD`. A plain `go build` leaves the defaults,
// "dev" and "unknown".
package buildinfo

import "runtime"

// Set with -ldflags -X; they are variables (not constants) for that reason.
var (
	// Version is the release, as git describe prints it (v1.2.3,
	// v1.2.3-4-gabcdef0, v1.2.3-dirty), or "dev".
	Version = "dev"
	// Commit is the abbreviated commit hash, or "unknown".
	Commit = "unknown"
)

// String is the one-line version banner that `currentd --version` and
// `currentctl version` print, e.g. "v1.2.3 (commit abcdef0, go1.26.0 linux/amd64)".
func String() string {
	v, c := Version, Commit
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	return v + " (commit " + c + ", " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
