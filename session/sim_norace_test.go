//go:build !race

package session

// The size of a full run, as issue 5 asks: simSeeds seeds per mode, each
// scripting simUpdates updates (plus those the 8 s update timer starts) and
// simPackets packets. An MLS update costs about 1 ms of CPU on the X25519
// suite, so a full run takes about five minutes on two cores; -short runs
// 20 seeds, and -sim.seeds, -sim.updates and -sim.packets change the size.
const (
	simSeeds   = 1000
	simUpdates = 200
	simPackets = 40
)
