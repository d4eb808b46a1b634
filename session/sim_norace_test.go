//go:build !race

package session

// simSeeds is the number of simulated network seeds in a full run.
const simSeeds = 600
