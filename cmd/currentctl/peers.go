package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/ctl"
)

func peersCommand() *cli.Command {
	return &cli.Command{
		Name:  "peers",
		Usage: "list, add, remove or change peers of the running daemon",
		Description: "Changes take effect at once and are logged by the daemon. They are written\n" +
			"to the configuration file only with --save; otherwise a restart or reload\n" +
			"returns to the file's peers. PEER is a peer's name or public key.",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "one line per peer: name, public key, endpoint, session",
				UsageText: "currentctl peers list [--json]",
				Flags:     []cli.Flag{jsonFlag()},
				Action:    peersList,
			},
			{
				Name:      "add",
				Usage:     "add a peer",
				UsageText: "currentctl peers add NAME --public-key KEY --allowed-ips PREFIX[,PREFIX...] [--endpoint HOST:PORT] [--keepalive DURATION] [--transport udp|tcp|auto] [--save]",
				Flags: append(peerSettingFlags(),
					&cli.StringFlag{Name: "public-key", Usage: "the peer's public key (from `currentctl pubkey`)"},
					saveFlag()),
				Action: peersAdd,
			},
			{
				Name:      "remove",
				Usage:     "remove a peer and close its session",
				UsageText: "currentctl peers remove PEER [--save]",
				Flags:     []cli.Flag{saveFlag()},
				Action:    peersRemove,
			},
			{
				Name:      "update",
				Usage:     "change a peer's endpoint, allowed IPs, keepalive or transport (its session is kept)",
				UsageText: "currentctl peers update PEER [--endpoint HOST:PORT|\"\"] [--allowed-ips PREFIX[,PREFIX...]] [--keepalive DURATION] [--transport udp|tcp|auto] [--save]",
				Flags:     append(peerSettingFlags(), saveFlag()),
				Action:    peersUpdate,
			},
		},
	}
}

func peerSettingFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "endpoint", Usage: "HOST:PORT to reach the peer at (\"\" for none: the peer connects to us)"},
		&cli.StringSliceFlag{Name: "allowed-ips", Usage: "prefixes routed to and accepted from the peer (replaces the list)"},
		&cli.DurationFlag{Name: "keepalive", Usage: "persistent keepalive interval (0 turns it off)"},
		&cli.StringFlag{Name: "transport", Usage: "udp, tcp or auto"},
	}
}

func peersList(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		st, err := cl.Status(ctx, "")
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, st.Peers)
		}
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPUBLIC KEY\tENDPOINT\tSESSION\tEPOCH")
		for _, p := range st.Peers {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", p.Name, p.PublicKey, orNone(p.Endpoint), p.State, p.Epoch)
		}
		return tw.Flush()
	})
}

func peersAdd(c *cli.Context) error {
	pos, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	spec := ctl.PeerSpec{
		Name:                pos[0],
		PublicKey:           c.String("public-key"),
		Endpoint:            c.String("endpoint"),
		AllowedIPs:          c.StringSlice("allowed-ips"),
		PersistentKeepalive: ctl.Seconds(c.Duration("keepalive")),
		Transport:           c.String("transport"),
	}
	switch {
	case spec.PublicKey == "":
		return usageError(c, "--public-key is required")
	case len(spec.AllowedIPs) == 0:
		return usageError(c, "--allowed-ips is required")
	}
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		if err := cl.AddPeer(ctx, spec, c.Bool("save")); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "peer %s added%s\n", spec.Name, savedNote(c))
		return nil
	})
}

func peersRemove(c *cli.Context) error {
	pos, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		if err := cl.RemovePeer(ctx, pos[0], c.Bool("save")); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "peer %s removed%s\n", pos[0], savedNote(c))
		return nil
	})
}

func peersUpdate(c *cli.Context) error {
	pos, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	p := ctl.PeerUpdateParams{Peer: pos[0], Save: c.Bool("save")}
	if c.IsSet("endpoint") {
		e := c.String("endpoint")
		p.Endpoint = &e
	}
	if c.IsSet("allowed-ips") {
		p.AllowedIPs = c.StringSlice("allowed-ips")
	}
	if c.IsSet("keepalive") {
		k := ctl.Seconds(c.Duration("keepalive"))
		p.PersistentKeepalive = &k
	}
	if c.IsSet("transport") {
		t := c.String("transport")
		p.Transport = &t
	}
	if p.Endpoint == nil && p.AllowedIPs == nil && p.PersistentKeepalive == nil && p.Transport == nil {
		return usageError(c, "nothing to update: give --endpoint, --allowed-ips, --keepalive or --transport")
	}
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		if err := cl.UpdatePeer(ctx, p); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "peer %s updated%s\n", pos[0], savedNote(c))
		return nil
	})
}

func savedNote(c *cli.Context) string {
	if c.Bool("save") {
		return " and saved to the configuration file"
	}
	return " (not saved: use --save to keep it across restarts)"
}
