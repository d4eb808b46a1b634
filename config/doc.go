// Package config is where a current daemon's settings come from: the TOML
// configuration file (one [interface] table and a [[peer]] table per pinned
// peer) and the key files it points to. It turns them into typed values the
// daemon can use without further checks, and it is strict on purpose: an
// unknown key, an ambiguous route or a readable private key stops the
// daemon with an error naming the file, line and key, because a VPN that
// starts with a setting silently ignored fails open or fails late.
//
// Parse and Load read a file, Validate checks a Config built in code, and
// Marshal writes one back. Commented example files are in the repository's
// configs/ directory.
//
// A private key file holds one line, the suite the key was generated for
// and the raw MLS signature private key in base64:
//
//	current-private-key:mls-xwing-ed25519:<base64>
//
// A public key, what peers pin in public_key, is tagged with its signature
// algorithm rather than a suite, because an identity outlives a choice of
// suite:
//
//	ed25519:<base64>
//
// keys.go has the reasoning.
//
// Nothing here resolves names, opens sockets or touches interfaces: the
// package describes what the daemon should do, not how.
package config
