//go:build !mlsopcount

package mls

// countOp records one public-key operation when built with the mlsopcount
// tag (opcount_on.go); otherwise it compiles to nothing.
func countOp(op string) {}

// countSigned records the length of a message signed or verified, with
// the mlsopcount tag only.
func countSigned(op string, n int) {}
