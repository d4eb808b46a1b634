package config

import (
	"bytes"

	"github.com/BurntSushi/toml"
)

// The on-disk shape, for writing. Values are the text forms Parse reads,
// so Marshal output parses back to an equal Config.
type fileOut struct {
	Interface ifaceOut  `toml:"interface"`
	Peer      []peerOut `toml:"peer,omitempty"`
}

type ifaceOut struct {
	Name            string   `toml:"name"`
	PrivateKeyFile  string   `toml:"private_key_file"`
	ListenPort      int      `toml:"listen_port"`
	Addresses       []string `toml:"addresses,omitempty"`
	MTU             int      `toml:"mtu"`
	Suite           string   `toml:"suite"`
	StateDir        string   `toml:"state_dir"`
	Routes          bool     `toml:"routes"`
	Fwmark          uint32   `toml:"fwmark,omitzero"`
	RekeyInterval   string   `toml:"rekey_interval"`
	RekeyBytes      string   `toml:"rekey_bytes"`
	DeadPeerTimeout string   `toml:"dead_peer_timeout"`
	hostOut
}

type peerOut struct {
	Name                string   `toml:"name"`
	PublicKey           string   `toml:"public_key"`
	Endpoint            string   `toml:"endpoint,omitempty"`
	AllowedIPs          []string `toml:"allowed_ips"`
	PersistentKeepalive string   `toml:"persistent_keepalive,omitempty"`
	Transport           string   `toml:"transport"`
}

// Marshal writes c as a configuration file of the shape Parse reads, with
// every default spelled out so the file says what the daemon does. It
// refuses an invalid Config (see Validate): a saved file that the daemon
// then rejects would turn a runtime change into a failed restart. Comments
// of the original file are not preserved.
func (c *Config) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ifc := &c.Interface
	out := fileOut{Interface: ifaceOut{
		Name:            ifc.Name,
		PrivateKeyFile:  ifc.PrivateKeyFile,
		ListenPort:      int(ifc.ListenPort),
		MTU:             ifc.MTU,
		Suite:           SuiteName(ifc.Suite),
		StateDir:        ifc.StateDir,
		Routes:          !ifc.ManualRoutes,
		Fwmark:          ifc.Fwmark,
		RekeyInterval:   fmtDuration(ifc.RekeyInterval),
		RekeyBytes:      FormatSize(ifc.RekeyBytes),
		DeadPeerTimeout: fmtDuration(ifc.DeadPeerTimeout),
		hostOut:         ifc.hostOut(),
	}}
	for _, a := range ifc.Addresses {
		out.Interface.Addresses = append(out.Interface.Addresses, a.String())
	}
	for _, p := range c.Peers {
		po := peerOut{
			Name:      p.Name,
			PublicKey: p.PublicKey.String(),
			Endpoint:  p.Endpoint.String(),
			Transport: p.Transport.String(),
		}
		for _, a := range p.AllowedIPs {
			po.AllowedIPs = append(po.AllowedIPs, a.String())
		}
		if p.PersistentKeepalive != 0 {
			po.PersistentKeepalive = fmtDuration(p.PersistentKeepalive)
		}
		out.Peer = append(out.Peer, po)
	}
	var b bytes.Buffer
	b.WriteString("# current configuration. Written by a program: comments are not kept.\n\n")
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
