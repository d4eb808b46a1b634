package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/current-vpn/current/internal/buildinfo"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/ctl"
)

func metricsCommand() *cli.Command {
	return &cli.Command{
		Name:      "metrics",
		Usage:     "print the daemon's metrics in Prometheus text format",
		UsageText: "currentctl metrics",
		Description: "For node_exporter's textfile collector, e.g. from a timer:\n" +
			"  currentctl metrics > /var/lib/node_exporter/current0.prom.tmp && mv ...",
		Action: metrics,
	}
}

func metrics(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		text, err := cl.Metrics(ctx)
		if err != nil {
			return err
		}
		_, err = io.WriteString(c.App.Writer, text)
		return err
	})
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:      "version",
		Usage:     "print the versions of currentctl and of the running daemon",
		UsageText: "currentctl version",
		Action:    version,
	}
}

func version(c *cli.Context) error {
	if _, err := args(c, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "currentctl %s (commit %s, %s, protocol %d)\n", buildinfo.Version, buildinfo.Commit, runtime.Version(), ctl.ProtocolVersion)
	return withClient(c, 0, func(ctx context.Context, cl *ctl.Client) error {
		v, err := cl.Version(ctx)
		if err != nil {
			return err
		}
		commit := ""
		if v.Commit != "" {
			commit = ", commit " + v.Commit
		}
		fmt.Fprintf(c.App.Writer, "currentd %s (%s%s, protocol %d)\n", v.Version, v.GoVersion, commit, v.Protocol)
		return nil
	})
}
