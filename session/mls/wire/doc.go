// Package wire is the TLS presentation language codec that MLS (RFC 9420)
// messages are written in: fixed-width big-endian integers, optional<T>, and
// vectors prefixed with MLS's variable-length integer (section 2.1.2).
//
// Decoding is written for hostile input. Every length is checked against the
// bytes that remain before anything is allocated, non-minimal and "11"-prefixed
// length headers are rejected, and errors are sticky: after the first failure a
// Reader returns zero values, so decoders can read a whole struct and check the
// error once at the end without ever panicking.
package wire
