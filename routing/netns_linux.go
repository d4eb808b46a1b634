package routing

import (
	"runtime"

	"github.com/vishvananda/netns"
)

// InNamespace calls f on an OS thread that is in network namespace ns for
// the duration of the call (netns.None() means the caller's namespace).
// Sockets, TUN devices and netlink handles that f creates stay in ns after
// it returns; code that only needs netlink should use [OpenAt] instead.
//
// A goroutine's namespace is that of the thread it happens to run on, and
// the Go scheduler moves goroutines between threads, so code can only be run
// in another namespace on a locked thread; and a thread that cannot be moved
// back must never run another goroutine. InNamespace therefore runs f on a
// goroutine of its own and, if restoring fails, lets that goroutine exit
// while still locked, which makes the runtime destroy the thread. f must
// not start goroutines that expect to be in ns: they run on other threads.
func InNamespace(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if ns.IsOpen() {
			if err := netns.Set(ns); err != nil {
				runtime.UnlockOSThread()
				errc <- err
				return
			}
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- err // the thread dies with this goroutine
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
