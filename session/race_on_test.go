//go:build race

package session

// raceEnabled: the race detector is on. It makes sync.Pool drop a share
// of what is put back, so allocation counts mean nothing then.
const raceEnabled = true
