//go:build !linux

package tunnel

// markMapping: the flags of mapflags_linux.go are Linux's.
func markMapping(mem []byte, slots bool) error { return nil }
