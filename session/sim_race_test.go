//go:build race

package session

// Under the race detector the simulation is ten times slower; fewer seeds
// keep the package within its time budget.
const (
	simSeeds   = 40
	simUpdates = 12
	simPackets = 40
)
