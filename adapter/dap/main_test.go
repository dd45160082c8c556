package dap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/plldb/plldb/testfixtures/pyenv"
)

// plldbBinary is the plldb command built once for the transport tests, which run it as an IDE would.
var plldbBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plldb-dap-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	plldbBinary = filepath.Join(dir, "plldb")
	build := exec.Command("go", "build", "-o", plldbBinary, "./cmd/plldb")
	build.Dir = pyenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build plldb: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
