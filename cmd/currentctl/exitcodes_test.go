package main

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/ctl"
)

// TestPermissionDeniedMessage: both refusals, the kernel's (Dial) and the
// daemon's (SO_PEERCRED), exit 1 and say "permission denied" once, in
// words rather than as the protocol code.
func TestPermissionDeniedMessage(t *testing.T) {
	for _, err := range []error{
		ctl.Errorf(ctl.CodePermissionDenied, "uid 65534 may not use this socket (only root or uid 0)"),
		ctl.Errorf(ctl.CodePermissionDenied, "permission denied connecting to /run/current/current0.sock: only root and the daemon's user may use it"),
	} {
		e := failure(err)
		ec, ok := e.(cli.ExitCoder)
		if !ok || ec.ExitCode() != exitFailed {
			t.Errorf("%v: %v, want exit %d", err, e, exitFailed)
			continue
		}
		if msg := e.Error(); strings.Count(msg, "permission denied") != 1 || strings.Contains(msg, "permission_denied") || !strings.Contains(msg, err.Error()) {
			t.Errorf("%v: message %q", err, msg)
		}
	}
}
