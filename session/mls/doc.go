// Package mls is current's implementation of the Messaging Layer Security
// protocol (RFC 9420), the continuous key agreement under every tunnel.
//
// The package is organised by concern: cipher suites and the labelled
// cryptographic operations built on them (suite*.go, labels.go), the key
// schedule and exporter (key_schedule.go), the secret tree that hands out
// per-sender message keys (secret_tree.go), message framing and protection
// (framing*.go, protect*.go), and the wire structs of RFC 9420 (one file per
// family). The TLS presentation language codec lives in the wire subpackage.
//
// Secrets are held in byte slices that are zeroed when they are replaced or
// consumed; see zero.go.
package mls
