package tunnel

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
)

// Reconfigure replaces the peer list, for SIGHUP. Peers are matched by
// public key, their identity: a peer whose key stays keeps its session and
// connection, and only its endpoint and allowed IPs (table and routes) are
// updated; a peer whose name changes is treated as removed and added, since
// the name keys logs and statistics. New peers start, removed peers are
// closed (their peers are told) and their routes deleted.
//
// Interface settings (key, suite, port, addresses, MTU) need a restart.
func (d *Device) Reconfigure(peers []PeerConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := d.cfg
	cfg.Peers = slices.Clone(peers)
	for i := range cfg.Peers {
		if cfg.Peers[i].Name == "" {
			cfg.Peers[i].Name = "peer" + strconv.Itoa(i)
		}
	}
	if err := cfg.check(d.ownPub); err != nil {
		return err
	}
	if d.closing.Load() {
		return fmt.Errorf("device closed")
	}
	// The owners hold the live endpoints; compare with what we last gave
	// them instead of reading their state.
	old := map[string]PeerConfig{}
	for _, pc := range d.cfg.Peers {
		old[string(pc.PublicKey)] = pc
	}
	keep := map[*peer]PeerConfig{}
	var added []PeerConfig
	for _, pc := range cfg.Peers {
		if p := d.byKey[string(pc.PublicKey)]; p != nil && p.cfg.Name == pc.Name {
			keep[p] = pc
		} else {
			added = append(added, pc)
		}
	}
	var next []*peer
	for _, p := range d.peers {
		pc, ok := keep[p]
		if !ok {
			d.log.Info("peer removed", "peer", p.cfg.Name)
			d.table.RemovePeer(p)
			delete(d.byKey, string(p.cfg.PublicKey))
			d.forgetPeerLocked(p)
			p.stop()
			continue
		}
		next = append(next, p)
		if err := d.table.SetPeer(p, pc.AllowedIPs); err != nil {
			return err // cannot happen: check validated the prefixes
		}
		was := old[string(pc.PublicKey)]
		if pc.Endpoint == was.Endpoint && slices.Equal(pc.AllowedIPs, was.AllowedIPs) &&
			pc.Transport == was.Transport && pc.PersistentKeepalive == was.PersistentKeepalive {
			continue
		}
		d.log.Info("peer updated", "peer", pc.Name)
		select {
		case p.reconf <- pc:
		case <-p.ctx.Done():
		}
	}
	for _, pc := range added {
		p := newPeer(d, pc)
		p.peerHelloKey = loadPeerHelloKey(d.cfg.StateDir, pc.PublicKey)
		next = append(next, p)
		d.byKey[string(pc.PublicKey)] = p
		if err := d.table.SetPeer(p, pc.AllowedIPs); err != nil {
			return err
		}
		d.log.Info("peer added", "peer", pc.Name)
		d.goOwner(p)
	}
	d.peers = next
	d.cfg.Peers = cfg.Peers
	d.sizeBuffers(len(next))
	d.opened.sizeFor(len(next))
	return d.net.syncRoutes(cfg.wantedRoutes())
}

// reconfigure applies a changed endpoint or allowed-IPs list in the owner.
// The session is untouched: the key did not change, and a changed
// endpoint only matters for the next dial.
func (p *peer) reconfigure(c PeerConfig) {
	if !bytes.Equal(c.PublicKey, p.cfg.PublicKey) {
		return
	}
	had := p.cfg.Endpoint != ""
	p.cfg.Endpoint, p.cfg.AllowedIPs = c.Endpoint, c.AllowedIPs
	p.cfg.PersistentKeepalive = c.PersistentKeepalive
	if c.Transport != p.cfg.Transport {
		p.cfg.Transport = c.Transport
		p.useTCP = c.Transport == TransportTCP
		p.probe = udpProbe{}
	}
	if !had && p.cfg.Endpoint != "" && p.conn == nil && !p.dialing {
		p.startDial()
	}
}
