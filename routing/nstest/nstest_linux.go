// Package nstest gives tests a network namespace of their own, so that
// tests of kernel configuration never touch the host's interfaces or routes.
//
// The namespaces are anonymous (not bind-mounted under /run/netns): the
// kernel frees one when its last reference goes, so even a test binary that
// is killed leaves nothing behind.
package nstest

import (
	"os"
	"testing"

	"github.com/current-vpn/current/routing"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and network interfaces")
	}
}

// New returns a fresh network namespace, closed (and so destroyed once
// nothing else holds it) when the test ends. It skips the test when not
// root or when the kernel refuses namespaces.
func New(t testing.TB) netns.NsHandle {
	t.Helper()
	RequireRoot(t)
	var ns netns.NsHandle
	err := routing.InNamespace(netns.None(), func() error {
		var err error
		// netns.New moves the calling thread into the new namespace;
		// InNamespace runs us on a thread of our own and takes it back.
		ns, err = netns.New()
		return err
	})
	if err != nil {
		t.Skipf("needs network namespaces: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	// Loopback is down in a new namespace; tests that talk to their own
	// addresses need it, and it costs nothing to the others.
	h := Handle(t, ns)
	if lo, err := h.LinkByName("lo"); err == nil {
		h.LinkSetUp(lo)
	}
	return ns
}

// Handle returns a netlink handle whose sockets live in ns, closed when the
// test ends.
func Handle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in %v: %v", ns, err)
	}
	t.Cleanup(h.Close)
	return h
}
