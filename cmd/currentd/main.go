// Command currentd is the current VPN daemon. It runs in the foreground:
//
//	currentd -c /etc/current/current0.toml [--log-format text|json] [--log-level debug|info|warn|error]
//	currentd --version
//
// Signals: SIGINT and SIGTERM shut down cleanly (sessions closed, routes
// and addresses removed); SIGUSR1 starts an epoch update (MLS commit with
// a fresh UpdatePath) on every established session; SIGHUP reloads the
// peer list, keeping the sessions of peers whose key and name did not
// change (interface settings need a restart).
//
// Under systemd use Type=notify: READY=1 is sent once the tunnel is up and
// STOPPING=1 when shutdown begins.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/internal/buildinfo"
)

// Exit codes, documented in currentd(8).
const (
	exitOK    = 0
	exitFatal = 1 // the daemon could not start or failed; the error is logged
	exitUsage = 2 // bad command line
)

const usageText = "currentd -c FILE [--log-format text|json] [--log-level LEVEL] [--ctl-dir DIR] [--cpuprofile FILE]\n" +
	"currentd --version"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a bad command line: it is printed with the usage and
// makes the exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// fatalError is an error the daemon has already logged.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// run is main without the process: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	err := app(stdout, stderr).Run(append([]string{"currentd"}, args...))
	var usage *usageError
	var fatal *fatalError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "currentd: %s\nusage: %s\n", usage.msg, usageText)
		return exitUsage
	case errors.As(err, &fatal):
		return exitFatal
	}
	fmt.Fprintln(stderr, "currentd:", err)
	return exitFatal
}

func app(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:            "currentd",
		Usage:           "the current VPN daemon: runs one tunnel interface in the foreground",
		UsageText:       usageText,
		HideVersion:     true, // --version is ours: it prints the build's commit too
		HideHelpCommand: true,
		Writer:          stdout,
		ErrWriter:       stderr,
		Flags: []cli.Flag{
			&cli.PathFlag{Name: "config", Aliases: []string{"c"}, Usage: "configuration `FILE` (required; see current.toml(5))"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT`: text or json", EnvVars: []string{"CURRENT_LOG_FORMAT"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "least severe `LEVEL` logged: debug, info, warn or error", EnvVars: []string{"CURRENT_LOG_LEVEL"}},
			&cli.PathFlag{Name: "ctl-dir", Value: ctl.DefaultDir, Usage: "directory `DIR` of the control socket"},
			&cli.PathFlag{Name: "cpuprofile", Usage: "write a CPU profile (pprof) to `FILE` until exit, for performance work"},
			&cli.BoolFlag{Name: "version", Usage: "print the version and exit"},
			// Test knobs: how long a transport=auto peer on TCP waits
			// between UDP probes (tunnel.Config.UDPProbeMin/Max).
			&cli.DurationFlag{Name: "udp-probe-min", Value: 30 * time.Second, Hidden: true},
			&cli.DurationFlag{Name: "udp-probe-max", Value: 5 * time.Minute, Hidden: true},
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err.Error()}
		},
		// Errors are turned into exit codes by run, not by os.Exit in
		// urfave/cli.
		ExitErrHandler: func(*cli.Context, error) {},
		Action:         runDaemon,
	}
}

func runDaemon(c *cli.Context) error {
	if c.Bool("version") {
		_, err := fmt.Fprintln(c.App.Writer, "currentd", buildinfo.String())
		return err
	}
	if c.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", c.Args().First())}
	}
	cfgPath := c.Path("config")
	if cfgPath == "" {
		return &usageError{"the configuration file is required (-c FILE)"}
	}
	log, err := newLogger(c.App.ErrWriter, c.String("log-format"), c.String("log-level"))
	if err != nil {
		return &usageError{err.Error()}
	}
	if path := c.Path("cpuprofile"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return &usageError{"--cpuprofile: " + err.Error()}
		}
		defer stop()
	}
	probes := probeTiming{min: c.Duration("udp-probe-min"), max: c.Duration("udp-probe-max")}
	if probes.min <= 0 || probes.max < probes.min {
		return &usageError{"--udp-probe-min must be positive and at most --udp-probe-max"}
	}
	if err := daemon(cfgPath, c.Path("ctl-dir"), probes, log); err != nil {
		log.Error("fatal", "err", err)
		return &fatalError{err}
	}
	return nil
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
