// Package pyenv gives tests a Python interpreter with the project's pinned test packages (debugpy, …).
//
// `make test` creates the virtualenv and passes it in PLLDB_TEST_PYTHON. A plain `go test` on a fresh checkout
// creates the same virtualenv at the repository root on first use, under a file lock, so packages tested in
// parallel never race to build it.
package pyenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

var (
	once   sync.Once
	python string
	err    error
)

// Python returns the path of the test interpreter, creating the virtualenv if needed. It fails the test when
// no interpreter can be had.
func Python(t testing.TB) string {
	t.Helper()
	once.Do(func() { python, err = find() })
	if err != nil {
		t.Fatalf("test python: %v", err)
	}
	return python
}

// RepoRoot is the repository's top folder (where go.mod is).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func find() (string, error) {
	if p := os.Getenv("PLLDB_TEST_PYTHON"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("PLLDB_TEST_PYTHON=%s: %w", p, err)
		}
		return p, nil
	}
	root := RepoRoot()
	venv := filepath.Join(root, ".venv")
	py := filepath.Join(venv, "bin", "python")
	stamp := filepath.Join(venv, ".stamp")
	if fresh(stamp, filepath.Join(root, "requirements-dev.txt")) {
		return py, nil
	}
	lock, err := os.OpenFile(filepath.Join(root, ".venv.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lock virtualenv: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock virtualenv: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if fresh(stamp, filepath.Join(root, "requirements-dev.txt")) {
		return py, nil
	}
	cmd := exec.Command("make", "-C", root, "venv")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make venv: %w\n%s", err, out)
	}
	return py, nil
}

func fresh(stamp, reqs string) bool {
	s, err := os.Stat(stamp)
	if err != nil {
		return false
	}
	r, err := os.Stat(reqs)
	return err == nil && !s.ModTime().Before(r.ModTime())
}
