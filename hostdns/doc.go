// Package hostdns points the host's resolver at a tunnel's DNS servers
// while the tunnel is up, and puts it back when it goes down.
//
// It sits beside routing/ rather than in it: routing speaks netlink to
// the kernel, while the resolver is user-space configuration with two
// managers of its own. Like wg-quick and resolvectl, the package uses
// systemd-resolved when it runs (/run/systemd/resolve/ exists and
// org.freedesktop.resolve1 has an owner on the system bus), through its
// D-Bus API, and resolvconf(8) otherwise (Debian's resolvconf or
// openresolv), with wg-quick's arguments. Both sit behind Backend.
//
// A full tunnel (a default route into the tunnel) must not leak queries
// to the local network's resolvers: with systemd-resolved the link gets
// the routing domain "~." and the default DNS route; with resolvconf the
// entry is exclusive (-x), as wg-quick makes it, so resolv.conf lists
// only the tunnel's servers.
//
// systemd-resolved forgets a link's settings when the link goes away, so
// a daemon killed with SIGKILL leaves nothing behind there; a resolvconf
// entry outlives the process. Apply therefore records what it will change
// in a file of the state directory before changing it, and on the next
// start Recover undoes what that file names.
package hostdns
