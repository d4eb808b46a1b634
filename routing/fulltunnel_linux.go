package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Full tunnel. A default route through the tunnel (a peer whose allowed IPs
// include 0.0.0.0/0 or ::/0) would also catch the daemon's own encrypted
// packets to its peers and send them back into the tunnel. So, as
// wg-quick does, the default route goes into a table of its own and two
// policy rules per family choose it:
//
//	31900: from all lookup main suppress_prefixlength 0
//	31901: not from all fwmark 0xcabc lookup 51900
//
// The first keeps every more specific route of the main table (the LAN,
// the tunnel's other prefixes) in force and ignores only its default
// route; the second sends what is left to the tunnel, except packets
// marked FullTunnelMark, which the daemon sets on all of its sockets
// (tunnel.Config.Fwmark): those fall through to the main table's default
// route, the underlay, wherever the host roams.

// The plan's number for the main table is the kernel's.
const _ = uint(mainTable-unix.RT_TABLE_MAIN) + uint(unix.RT_TABLE_MAIN-mainTable)

// SetFullTunnelMark sets the mark that escapes a full tunnel and the
// number of its routing table; call it before adding a default route.
// 0 restores FullTunnelMark.
func (l *Link) SetFullTunnelMark(mark uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fullMark = mark
}

// fullTunnelMark is the mark in force (l.mu held).
func (l *Link) fullTunnelMark() uint32 {
	if l.fullMark == 0 {
		return FullTunnelMark
	}
	return l.fullMark
}

// tableFor is the routing table of a route to p (l.mu held).
func (l *Link) tableFor(p netip.Prefix) int {
	if plan, err := planFullTunnel(platformLinux, p, l.fullTunnelMark()); err == nil {
		return plan.Table
	}
	return unix.RT_TABLE_MAIN
}

// fullTunnelRules are the rules of p's family as the plan has them, in
// the order they are added: the suppress rule first, so that no packet
// that belongs to the main table's specific routes ever sees the tunnel's
// table.
func fullTunnelRules(p netip.Prefix, markTable uint32) []*netlink.Rule {
	plan, err := planFullTunnel(platformLinux, p, markTable)
	if err != nil {
		return nil
	}
	var rules []*netlink.Rule
	for _, pr := range plan.Rules {
		r := netlink.NewRule()
		r.Family = family(p.Addr())
		r.Priority = pr.Priority
		r.Table = pr.Table
		r.SuppressPrefixlen = pr.SuppressPrefixlen
		if pr.Mark != 0 {
			mask := uint32(0xffffffff)
			r.Mark = pr.Mark
			r.Mask = &mask
		}
		r.Invert = pr.Invert
		rules = append(rules, r)
	}
	return rules
}

// addFullTunnelRules installs the rules of p's family unless this Link
// already did. A rule that exists already is taken over: only a daemon
// that died without cleaning up leaves one with exactly these selectors.
func (l *Link) addFullTunnelRules(p netip.Prefix) error {
	if slices.ContainsFunc(l.owned, func(o owned) bool { return o.rule != nil && o.prefix == p }) {
		return nil
	}
	for _, r := range fullTunnelRules(p, l.fullTunnelMark()) {
		if err := l.h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add rule %v: %w", r, err)
		}
		l.owned = append(l.owned, owned{prefix: p, rule: r})
	}
	return nil
}

// delFullTunnelRules removes the rules of p's family, the mark rule first.
func (l *Link) delFullTunnelRules(p netip.Prefix) error {
	rules := fullTunnelRules(p, l.fullTunnelMark())
	for i := len(rules) - 1; i >= 0; i-- {
		if err := l.delRule(rules[i]); err != nil {
			return err
		}
	}
	l.disown(func(o owned) bool { return o.rule != nil && o.prefix == p })
	return nil
}

// delRule deletes r, tolerating its absence.
func (l *Link) delRule(r *netlink.Rule) error {
	if err := l.h.RuleDel(r); err != nil && !gone(err) {
		return fmt.Errorf("del rule %v: %w", r, err)
	}
	return nil
}
