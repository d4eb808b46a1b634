package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	if b, err := Read(write("ok", "secret", 0o600), 6); err != nil || string(b) != "secret" {
		t.Fatalf("0600 file: %q, %v", b, err)
	}
	var loose *LooseError
	if _, err := Read(write("loose", "secret", 0o640), 64); !errors.Is(err, ErrLoose) || !errors.As(err, &loose) || loose.Mode != 0o640 {
		t.Fatalf("0640 file: %v", err)
	}
	if _, err := Read(write("big", "secret", 0o600), 5); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("file over the limit: %v", err)
	}
	if _, err := Read(dir, 64); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("directory: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(fifo, 64); !errors.Is(err, ErrNotRegular) { // and no hang
		t.Fatalf("FIFO: %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing"), 64); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
