package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/ctl"
)

func rekeyCommand() *cli.Command {
	return &cli.Command{
		Name:      "rekey",
		Usage:     "start an epoch update (MLS commit) and wait for the new epoch",
		UsageText: "currentctl rekey PEER|--all [--timeout DURATION]",
		Description: "Prints each peer's new epoch. Exits 1 if any peer did not reach a new\n" +
			"epoch in time or has no established session.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "every peer with an established session"},
			&cli.DurationFlag{Name: "timeout", Value: ctl.DefaultRekeyTimeout, Usage: "how long to wait for the new epochs (at most " + ctl.MaxRekeyTimeout.String() + ")"},
		},
		Action: rekey,
	}
}

func rekey(c *cli.Context) error {
	pos, err := args(c, 0, 1)
	if err != nil {
		return err
	}
	all := c.Bool("all")
	switch {
	case all && len(pos) == 1:
		return usageError(c, "give PEER or --all, not both")
	case !all && len(pos) == 0:
		return usageError(c, "give PEER or --all")
	}
	peer := ""
	if !all {
		peer = pos[0]
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 || timeout > ctl.MaxRekeyTimeout {
		return usageError(c, "--timeout must be between 0 and %s", ctl.MaxRekeyTimeout)
	}
	return withClient(c, timeout, func(ctx context.Context, cl *ctl.Client) error {
		r, err := cl.Rekey(ctx, peer, timeout)
		if err != nil {
			return err
		}
		failed := 0
		for _, o := range r.Results {
			if o.Error != nil {
				failed++
				fmt.Fprintf(c.App.ErrWriter, "%s: %s\n", o.Peer, o.Error.Message)
				continue
			}
			fmt.Fprintf(c.App.Writer, "%s: epoch %d\n", o.Peer, o.Epoch)
		}
		if failed > 0 {
			return cli.Exit(fmt.Sprintf("currentctl: %d of %d peers did not rekey", failed, len(r.Results)), exitFailed)
		}
		return nil
	})
}
