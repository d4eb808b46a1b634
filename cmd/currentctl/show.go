package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

func showCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show the interface and its peers",
		UsageText: "currentctl show [PEER] [--json]",
		Description: "PEER is a peer's name or public key. Without --json the output is for people\n" +
			"and may change; --json prints the stable schema of docs/ctl.md.",
		Flags:  []cli.Flag{jsonFlag()},
		Action: show,
	}
}

func show(c *cli.Context) error {
	pos, err := args(c, 0, 1)
	if err != nil {
		return err
	}
	peer := ""
	if len(pos) == 1 {
		peer = pos[0]
	}
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		st, err := cl.Status(ctx, peer)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return writeJSON(c.App.Writer, st)
		}
		formatStatus(c.App.Writer, st, peer == "")
		return nil
	})
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// formatStatus writes st in the spirit of `wg show`: the interface, then a
// paragraph per peer. Times are relative to the daemon's clock (st.Time).
func formatStatus(w io.Writer, st *ctl.Status, withInterface bool) {
	ifc := st.Interface
	if withInterface {
		fmt.Fprintf(w, "interface: %s\n", ifc.Name)
		fmt.Fprintf(w, "  public key: %s\n", ifc.PublicKey)
		fmt.Fprintf(w, "  listening port: %d\n", ifc.ListenPort)
		fmt.Fprintf(w, "  suite: %s\n", ifc.Suite)
		fmt.Fprintf(w, "  rekey: every %s or %s\n", durationText(ifc.RekeyInterval.Duration()), config.FormatSize(ifc.RekeyBytes))
	}
	for i, p := range st.Peers {
		if withInterface || i > 0 {
			fmt.Fprintln(w)
		}
		formatPeer(w, st.Time, &p)
	}
}

func formatPeer(w io.Writer, now time.Time, p *ctl.PeerStatus) {
	fmt.Fprintf(w, "peer: %s\n", p.Name)
	fmt.Fprintf(w, "  public key: %s\n", p.PublicKey)
	fmt.Fprintf(w, "  endpoint: %s\n", orNone(p.Endpoint))
	if p.RemoteAddress != "" && p.RemoteAddress != p.Endpoint {
		fmt.Fprintf(w, "  remote address: %s\n", p.RemoteAddress)
	}
	ips := make([]string, len(p.AllowedIPs))
	for i, a := range p.AllowedIPs {
		ips[i] = a.String()
	}
	fmt.Fprintf(w, "  allowed ips: %s\n", orNone(strings.Join(ips, ", ")))
	fmt.Fprintf(w, "  transport: %s\n", transportText(now, p))
	fmt.Fprintf(w, "  session: %s\n", p.State)
	if p.Epoch != 0 || p.LastEpochChange != nil {
		fmt.Fprintf(w, "  epoch: %d, updated %s\n", p.Epoch, ago(now, p.LastEpochChange))
	} else {
		fmt.Fprintf(w, "  epoch: none\n")
	}
	fmt.Fprintf(w, "  latest handshake: %s\n", ago(now, p.LastHandshake))
	fmt.Fprintf(w, "  transfer: %s received, %s sent\n", bytesText(p.RxBytes), bytesText(p.TxBytes))
	fmt.Fprintf(w, "  dropped: %d replayed, %d bad source, %d queue full\n", p.Dropped.Replay, p.Dropped.BadSource, p.Dropped.QueueFull)
	if p.PersistentKeepalive != 0 {
		fmt.Fprintf(w, "  persistent keepalive: every %s\n", durationText(p.PersistentKeepalive.Duration()))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ago writes how long before now t was, as wg does: "1 hour, 2 seconds ago".
func ago(now time.Time, t *time.Time) string {
	if t == nil {
		return "never"
	}
	d := now.Sub(*t)
	if d < time.Second {
		// A clock step backwards, or "just now": neither needs a number.
		return "now"
	}
	return durationText(d) + " ago"
}

func durationText(d time.Duration) string {
	secs := int64(d / time.Second)
	units := []struct {
		name string
		n    int64
	}{{"day", 86400}, {"hour", 3600}, {"minute", 60}, {"second", 1}}
	var parts []string
	for _, u := range units {
		if v := secs / u.n; v > 0 {
			secs -= v * u.n
			s := fmt.Sprintf("%d %s", v, u.name)
			if v != 1 {
				s += "s"
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "0 seconds"
	}
	return strings.Join(parts, ", ")
}

func bytesText(n uint64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.2f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.2f MiB", float64(n)/(k*k))
	case n < k*k*k*k:
		return fmt.Sprintf("%.2f GiB", float64(n)/(k*k*k))
	}
	return fmt.Sprintf("%.2f TiB", float64(n)/(k*k*k*k))
}

// transportText is the configured transport, and the one in use with why
// when there is a connection: "auto, on tcp (fallback 2 minutes ago, next
// UDP probe in 28 seconds)".
func transportText(now time.Time, p *ctl.PeerStatus) string {
	if p.ActiveTransport == "" {
		return p.Transport
	}
	why := p.TransportReason
	if p.FallbackSince != nil {
		why += " " + ago(now, p.FallbackSince)
	}
	switch {
	case p.UDPProbing:
		why += ", probing UDP"
	case p.NextUDPProbe != nil:
		why += ", next UDP probe " + inTime(now, *p.NextUDPProbe)
	}
	return fmt.Sprintf("%s, on %s (%s)", p.Transport, p.ActiveTransport, why)
}

// inTime says how long after now t is: "in 3 seconds", or "now".
func inTime(now, t time.Time) string {
	if d := t.Sub(now); d >= time.Second {
		return "in " + durationText(d)
	}
	return "now"
}
