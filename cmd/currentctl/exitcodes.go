package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/ctl"
)

// Exit codes of the commands that talk to the daemon, documented in
// docs/ctl.md. Scripts rely on them: 3 lets a monitoring check tell "the
// VPN is down" from "the request was refused".
const (
	exitOK         = 0
	exitFailed     = 1 // the operation failed; the daemon's error is printed
	exitUsage      = 2 // bad command line
	exitNotRunning = 3 // no daemon serves the socket
)

// usageError reports a bad command line with exit code 2.
func usageError(c *cli.Context, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if c != nil && c.Command != nil && c.Command.HelpName != "" {
		msg += fmt.Sprintf(" (see %s --help)", c.Command.HelpName)
	}
	return cli.Exit("currentctl: "+msg, exitUsage)
}

// onUsageError makes urfave/cli's flag parsing errors exit with 2 rather
// than 1. The lead sets it as the App's OnUsageError too.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError(c, "%v", err)
}

// failure turns an error from the ctl client into the exit code it means.
func failure(err error) error {
	if err == nil {
		return nil
	}
	var ec cli.ExitCoder
	switch {
	case errors.As(err, &ec):
		return err
	case errors.Is(err, ctl.ErrNotRunning):
		return cli.Exit("currentctl: "+err.Error()+" (is currentd running for this interface?)", exitNotRunning)
	case errors.Is(err, ctl.ErrPermissionDenied):
		// The daemon's refusal names the uid but not the reason's
		// name; say it, as the kernel's refusal does.
		msg := err.Error()
		if !strings.Contains(strings.ToLower(msg), "permission denied") {
			msg = "permission denied: " + msg
		}
		return cli.Exit("currentctl: "+msg+" (run as root)", exitFailed)
	}
	return cli.Exit("currentctl: "+err.Error(), exitFailed)
}

// exitCodeOf is the exit status for an error Run returned, for main: an
// ExitCoder's code (urfave/cli normally exits with it already), 1 for
// anything else.
func exitCodeOf(err error) int {
	var ec cli.ExitCoder
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ec):
		return ec.ExitCode()
	}
	return exitFailed
}

// commandNotFound is for the App's CommandNotFound: without it urfave/cli
// exits with 3 ("No help topic"), which here means "daemon not running".
func commandNotFound(c *cli.Context, name string) {
	fmt.Fprintf(c.App.ErrWriter, "currentctl: unknown command %q (see currentctl --help)\n", name)
	cli.OsExiter(exitUsage)
}
