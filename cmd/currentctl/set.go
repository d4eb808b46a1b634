package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

func setCommand() *cli.Command {
	return &cli.Command{
		Name:      "set",
		Usage:     "change the rekey policy of every session",
		UsageText: "currentctl set [--rekey-interval DURATION] [--rekey-bytes SIZE] [--save]",
		Description: "A session updates its epoch after the interval or after that much traffic,\n" +
			"whichever comes first. SIZE is e.g. 1GiB, 500MB or a number of bytes.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "rekey-interval", Usage: "longest time between epoch updates (at least " + config.MinRekeyInterval.String() + ")"},
			&cli.StringFlag{Name: "rekey-bytes", Usage: "most traffic between epoch updates"},
			saveFlag(),
		},
		Action: set,
	}
}

func set(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	p := ctl.SetParams{Save: c.Bool("save")}
	if c.IsSet("rekey-interval") {
		d := ctl.Seconds(c.Duration("rekey-interval"))
		p.RekeyInterval = &d
	}
	if c.IsSet("rekey-bytes") {
		n, err := config.ParseSize(c.String("rekey-bytes"))
		if err != nil {
			return usageError(c, "--rekey-bytes: %v", err)
		}
		p.RekeyBytes = &n
	}
	if p.RekeyInterval == nil && p.RekeyBytes == nil {
		return usageError(c, "nothing to set: give --rekey-interval or --rekey-bytes")
	}
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		pol, err := cl.SetPolicy(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "rekey: every %s or %s%s\n", durationText(pol.RekeyInterval.Duration()), config.FormatSize(pol.RekeyBytes), savedNote(c))
		return nil
	})
}
