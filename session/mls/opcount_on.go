//go:build mlsopcount

package mls

import (
	"crypto/hpke"
	"sync"
)

// Built with -tags mlsopcount, the engine counts its public-key operations
// so that tests and benchmarks can report how many a protocol step needs.

var (
	opMu     sync.Mutex
	opCounts = map[string]int{}
	// opSizes are the lengths of the messages signed ("sig.sign") and
	// verified ("sig.verify"): Ed25519 hashes the whole message, so what a
	// signature costs depends on them.
	opSizes = map[string][]int{}
)

func countOp(op string) {
	opMu.Lock()
	opCounts[op]++
	opMu.Unlock()
}

func countSigned(op string, n int) {
	opMu.Lock()
	opSizes[op] = append(opSizes[op], n)
	opMu.Unlock()
}

// SignedSizes returns the lengths of the messages signed ("sig.sign") and
// verified ("sig.verify") since the last ResetOpCounts, in order.
func SignedSizes() map[string][]int {
	opMu.Lock()
	defer opMu.Unlock()
	out := make(map[string][]int, len(opSizes))
	for k, v := range opSizes {
		out[k] = append([]int(nil), v...)
	}
	return out
}

// OpCounts returns the operations counted since the last ResetOpCounts.
func OpCounts() map[string]int {
	opMu.Lock()
	defer opMu.Unlock()
	out := make(map[string]int, len(opCounts))
	for k, v := range opCounts {
		out[k] = v
	}
	return out
}

// ResetOpCounts zeroes the counters and empties the cache of verified
// signatures and keys (verify_cache.go), so that what is counted next is
// what a process of its own would do: two peers in one test process would
// otherwise find each other's checks cached. The cache of signature public
// keys stays: it serves a process's own, long-lived identity key.
func ResetOpCounts() {
	opMu.Lock()
	clear(opCounts)
	clear(opSizes)
	opMu.Unlock()
	verified.mu.Lock()
	verified.used = [verifiedCacheSize]bool{}
	verified.mu.Unlock()
	publicKeys.mu.Lock()
	publicKeys.pubs = [publicKeyCacheSize]hpke.PublicKey{}
	publicKeys.mu.Unlock()

}
