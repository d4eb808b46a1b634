package main

import (
	"context"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

// callTimeout bounds one exchange with the daemon (rekey adds its own
// wait): a daemon that does not answer in this time is stuck, and a
// script should learn so rather than hang.
const callTimeout = 10 * time.Second

// ctlFlags are the global flags of the commands that talk to a daemon.
func ctlFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "interface",
			Aliases: []string{"i"},
			Value:   config.DefaultInterfaceName,
			Usage:   "interface whose daemon to talk to",
			EnvVars: []string{"CURRENT_INTERFACE"},
		},
		&cli.StringFlag{
			Name:  "socket",
			Usage: "control socket `PATH` (default " + ctl.DefaultDir + "/INTERFACE.sock)",
		},
	}
}

// ctlCommands are the commands that talk to a daemon.
func ctlCommands() []*cli.Command {
	cmds := []*cli.Command{
		showCommand(),
		peersCommand(),
		rekeyCommand(),
		setCommand(),
		metricsCommand(),
		versionCommand(),
		completionCommand(),
	}
	for _, c := range cmds {
		setUsageErrors(c)
	}
	return cmds
}

func setUsageErrors(c *cli.Command) {
	c.OnUsageError = onUsageError
	for _, s := range c.Subcommands {
		setUsageErrors(s)
	}
}

// socketPath is where the daemon of the selected interface listens.
func socketPath(c *cli.Context) string {
	if p := c.String("socket"); p != "" {
		return p
	}
	return ctl.SocketPath(ctl.DefaultDir, c.String("interface"))
}

// withClient runs f with a connection to the daemon and a context bounded
// by extra plus callTimeout, and maps errors to exit codes.
func withClient(c *cli.Context, extra time.Duration, f func(ctx context.Context, cl *ctl.Client) error) error {
	cl, err := ctl.Dial(socketPath(c))
	if err != nil {
		return failure(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, callTimeout+extra)
	defer cancel()
	return failure(f(ctx, cl))
}

// args returns the positional arguments, after applying any flags found
// among them: urfave/cli v2 stops parsing flags at the first argument, but
// `currentctl show alice --json` is how people type.
func args(c *cli.Context, min, max int) ([]string, error) {
	var pos []string
	in := c.Args().Slice()
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--" {
			pos = append(pos, in[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(c.Command, name)
		if f == nil {
			return nil, usageError(c, "unknown flag %s", a)
		}
		if _, isBool := f.(*cli.BoolFlag); isBool {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(in) {
				return nil, usageError(c, "flag %s needs a value", a)
			}
			i++
			value = in[i]
		}
		if err := c.Set(name, value); err != nil {
			return nil, usageError(c, "%s: %v", a, err)
		}
	}
	switch {
	case len(pos) < min:
		return nil, usageError(c, "missing argument")
	case max >= 0 && len(pos) > max:
		return nil, usageError(c, "too many arguments")
	}
	return pos, nil
}

func lookupFlag(cmd *cli.Command, name string) cli.Flag {
	if cmd == nil {
		return nil
	}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// Flags are made afresh for each command: urfave/cli keeps parse state in
// them.
func saveFlag() cli.Flag {
	return &cli.BoolFlag{
		Name:  "save",
		Usage: "also write the change to the configuration file (comments in it are lost)",
	}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON (schema in docs/ctl.md)"}
}
