// Package secretfile reads the files that hold secrets (the private key,
// the hello keys): only regular files, never one that group or others may
// access, never more than a limit. A key readable by others must be
// presumed known to them, and refusing it is the only way to make the
// mistake visible before it matters.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

var (
	// ErrLoose: group or others may access the file (a *LooseError).
	ErrLoose = errors.New("readable by group or others")
	// ErrNotRegular: a directory, device, FIFO or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: longer than the caller's limit.
	ErrTooLarge = errors.New("too large")
)

// LooseError is the mode of a file that group or others may access.
type LooseError struct{ Mode fs.FileMode }

func (e *LooseError) Error() string {
	return fmt.Sprintf("has mode %04o; it must be 0600", e.Mode)
}

func (e *LooseError) Is(target error) bool { return target == ErrLoose }

// Read returns the contents of path, a regular file of at most limit bytes
// that only its owner may access; the caller clears them when done. The
// file is opened without blocking (a FIFO would wait for a writer for
// ever) and the checks are made on the open file, so what is checked is
// what is read. Symbolic links are followed (secret stores mount keys that
// way); the mode checked is the target's.
func Read(path string, limit int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, ErrNotRegular
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, &LooseError{Mode: perm}
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err == nil && len(b) > limit {
		err = ErrTooLarge
	}
	if err != nil {
		clear(b)
		return nil, err
	}
	return b, nil
}
