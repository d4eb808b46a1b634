package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Hooks: the pre_up, post_up, pre_down and post_down commands of the
// configuration, as wg-quick runs its PreUp and friends. Each runs by
// /bin/sh -c with %i replaced by the interface name, as the daemon's user
// with the daemon's capabilities, for at most the hook timeout. Up hooks
// stop at the first failure, which aborts the start; down hooks all run,
// and a failure is only logged, since nothing should keep a tunnel from
// going down.

// Bounds on what a hook's output costs the log.
const (
	hookMaxLineLen = 1024
	hookMaxLines   = 100
	// hookWaitDelay is how long a timed-out hook's output is still read
	// after its process group was killed: a daemonising command can hold
	// the pipe open for ever otherwise.
	hookWaitDelay = 2 * time.Second
)

type hookRunner struct {
	ifname  string
	timeout time.Duration
	log     *slog.Logger
}

// up runs the commands of stage in order and returns the first failure.
func (h hookRunner) up(stage string, cmds []string) error {
	for i, c := range cmds {
		if err := h.run(stage, i, c); err != nil {
			return err
		}
	}
	return nil
}

// down runs every command of stage, logging failures.
func (h hookRunner) down(stage string, cmds []string) {
	for i, c := range cmds {
		if err := h.run(stage, i, c); err != nil {
			h.log.Error("hook failed; going on with the shutdown", "err", err)
		}
	}
}

func (h hookRunner) run(stage string, i int, command string) error {
	command = strings.ReplaceAll(command, "%i", h.ifname)
	log := h.log.With("hook", fmt.Sprintf("%s[%d]", stage, i))
	log.Info("running hook", "command", command)
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	// The hook's children go with it when it times out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = hookWaitDelay
	out := &hookLog{log: log}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	out.flush()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s[%d] %q: killed after %s", stage, i, command, h.timeout)
	case err != nil:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("%s[%d] %q: %s", stage, i, command, exit.ProcessState)
		}
		return fmt.Errorf("%s[%d] %q: %w", stage, i, command, err)
	}
	return nil
}

// hookLog logs a hook's output a line at a time, each line cut at
// hookMaxLineLen and at most hookMaxLines of them.
type hookLog struct {
	log     *slog.Logger
	partial []byte
	lines   int
}

func (l *hookLog) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := hookMaxLineLen - len(l.partial)
			l.partial = append(l.partial, p[:max(0, min(room, len(p)))]...)
			break
		}
		room := hookMaxLineLen - len(l.partial)
		l.partial = append(l.partial, p[:max(0, min(room, i))]...)
		l.emit()
		p = p[i+1:]
	}
	return n, nil
}

func (l *hookLog) emit() {
	l.lines++
	switch {
	case l.lines <= hookMaxLines:
		l.log.Info("hook output", "line", string(l.partial))
	case l.lines == hookMaxLines+1:
		l.log.Warn("hook output cut", "after_lines", hookMaxLines)
	}
	l.partial = l.partial[:0]
}

// flush logs an unterminated last line.
func (l *hookLog) flush() {
	if len(l.partial) > 0 {
		l.emit()
	}
}
