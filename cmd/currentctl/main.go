// Command currentctl manages current keys and talks to a running currentd
// over its control socket (see docs/ctl.md):
//
//	currentctl genkey [--suite NAME] > /etc/current/current0.key
//	currentctl pubkey < /etc/current/current0.key
//	currentctl [-i IFACE] show [PEER] [--json]
//	currentctl [-i IFACE] rekey [PEER|--all]
//	currentctl [-i IFACE] peers list|add|remove|update ...
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/config"
)

func main() {
	if err := app().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "currentctl:", err)
		os.Exit(exitCodeOf(err))
	}
}

func app() *cli.App {
	return &cli.App{
		Name:                 "currentctl",
		Usage:                "manage current keys and a running currentd",
		Flags:                ctlFlags(),
		EnableBashCompletion: true,
		OnUsageError:         onUsageError,
		CommandNotFound:      commandNotFound,
		Commands: append([]*cli.Command{
			{
				Name:      "genkey",
				Usage:     "write a new private key to standard output",
				UsageText: "currentctl genkey [--suite NAME] > FILE (then chmod 600 FILE)",
				Flags: []cli.Flag{&cli.StringFlag{
					Name:  "suite",
					Value: config.SuiteName(config.DefaultSuite),
					Usage: "MLS cipher suite: " + strings.Join(config.SuiteNames(), ", "),
				}},
				Action: genkey,
			},
			{
				Name:      "pubkey",
				Usage:     "read a private key on standard input, write its public key",
				UsageText: "currentctl pubkey < FILE",
				Action:    pubkey,
			},
		}, ctlCommands()...),
	}
}

func genkey(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("genkey takes no arguments")
	}
	suite, err := config.SuiteByName(c.String("suite"))
	if err != nil {
		return err
	}
	k, err := config.GeneratePrivateKey(suite)
	if err != nil {
		return err
	}
	defer k.Zero()
	_, err = fmt.Fprintln(c.App.Writer, k.String())
	return err
}

// maxKeyInput is far above any key's text; it only stops a mistaken pipe
// from being read forever.
const maxKeyInput = 1 << 16

func pubkey(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("pubkey takes no arguments (the key comes on standard input)")
	}
	in := c.App.Reader
	if in == nil {
		in = os.Stdin
	}
	text, err := io.ReadAll(io.LimitReader(in, maxKeyInput))
	if err != nil {
		return err
	}
	defer clear(text)
	k, err := config.ParsePrivateKey(string(text))
	if err != nil {
		return err
	}
	defer k.Zero()
	pub, err := k.Public()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.App.Writer, pub.String())
	return err
}
