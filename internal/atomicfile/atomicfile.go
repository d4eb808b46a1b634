// Package atomicfile replaces files so that a crash leaves either the old
// content or the new one, never a truncated file: key files, saved session
// state and configuration written back by the control socket all need that.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data. The data goes to a temporary file in
// the same directory, created with mode perm before any byte is written (so
// a secret is never readable by others, not even briefly), synced, and
// renamed over path; the directory is synced last so the rename survives a
// power loss.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return WriteFileAs(path, data, perm, -1, -1)
}

// WriteFileAs is WriteFile that also gives the new file the owner uid and
// group gid (-1 keeps the process's). A failed chown is not an error: only
// root may give files away, and the content matters more than the owner.
func WriteFileAs(path string, data []byte, perm fs.FileMode, uid, gid int) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := writeSyncClose(f, data, perm, uid, gid); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The file is complete at this point; a failed directory sync only
	// weakens durability, so it is not reported.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func writeSyncClose(f *os.File, data []byte, perm fs.FileMode, uid, gid int) error {
	err := f.Chmod(perm)
	if err == nil && (uid >= 0 || gid >= 0) {
		_ = f.Chown(uid, gid)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
