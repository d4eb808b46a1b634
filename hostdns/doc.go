// Package hostdns points the host's resolver at a tunnel's DNS servers
// while the tunnel is up, and puts it back when it goes down.
//
// It sits beside routing/ rather than in it: routing speaks to the
// kernel, while the resolver is user-space configuration with managers of
// its own.
//
// Platform seam: Detect picks the backend for the system it runs on. On
// Linux (detect_linux.go), like wg-quick and resolvectl, the package uses
// systemd-resolved when it runs (/run/systemd/resolve/ exists and
// org.freedesktop.resolve1 has an owner on the system bus), through its
// D-Bus API, and resolvconf(8) otherwise (Debian's resolvconf or
// openresolv), with wg-quick's arguments. On FreeBSD (detect_freebsd.go)
// it is resolvconf, which the base system ships. On macOS
// (detect_darwin.go) it is networksetup(8), as in wg-quick's darwin
// backend: every enabled network service gets the tunnel's servers and
// search domains, and gets its own back on Revert (networksetup.go). All
// sit behind Backend. Linux's backends are tested against the real
// programs; networksetup against a stand-in script, since macOS cannot
// run here.
//
// A full tunnel (a default route into the tunnel) must not leak queries
// to the local network's resolvers: with systemd-resolved the link gets
// the routing domain "~." and the default DNS route; with resolvconf the
// entry is exclusive (-x), as wg-quick makes it, so resolv.conf lists
// only the tunnel's servers; networksetup sends every query to them.
//
// systemd-resolved forgets a link's settings when the link goes away, so
// a daemon killed with SIGKILL leaves nothing behind there; a resolvconf
// entry outlives the process. Apply therefore records what it will change
// in a file of the state directory before changing it, and on the next
// start Recover undoes what that file names.
package hostdns
