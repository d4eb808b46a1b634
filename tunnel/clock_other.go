//go:build !linux

package tunnel

import "time"

// bootTime is the monotonic clock where no clock that counts suspend is
// wired up yet: a sleep then goes unnoticed, as it did before.
func bootTime() time.Duration { return monoTime() }
