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
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/internal/buildinfo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("currentd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "configuration `file` (required)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&ctlDir, "ctl-dir", ctl.DefaultDir, "`directory` of the control socket")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to `file` until exit, for performance work")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(os.Stdout, "currentd", buildinfo.String())
		return 0
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: currentd -c FILE [--log-format text|json] [--log-level LEVEL] [--ctl-dir DIR] [--cpuprofile FILE] | currentd --version")
		return 2
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "currentd:", err)
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "currentd: --cpuprofile:", err)
			return 2
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if err := daemon(*cfgPath, log); err != nil {
		log.Error("fatal", "err", err)
		return 1
	}
	return 0
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
