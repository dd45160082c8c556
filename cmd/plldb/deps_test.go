package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProductLinksNoTestCode: the shipped binary must not carry the testing package or test fixtures.
func TestProductLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err, "go list -deps")
	for _, pkg := range strings.Fields(string(out)) {
		assert.NotEqual(t, "testing", pkg, "plldb links the testing package")
		assert.NotContains(t, pkg, "/testfixtures/", "plldb links test fixtures")
		assert.NotContains(t, pkg, "testify", "plldb links testify")
		assert.NotContains(t, pkg, "adapter/daptest", "plldb links the DAP test client")
	}
}

// TestImportsPointDownward: cmd → adapter → cloud/layer → bridge, as DESIGN.md's folder table says. A package
// may import its own folder's packages and any folder below it, never one above.
func TestImportsPointDownward(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "github.com/plldb/plldb/...").Output()
	require.NoError(t, err, "go list")
	const mod = "github.com/plldb/plldb/"
	// What each top-level folder may import of this module besides itself.
	allowed := map[string][]string{
		"bridge":       nil,
		"layer":        {"bridge"},
		"cloud":        {"bridge"},
		"adapter":      {"bridge", "cloud", "layer"},
		"cmd":          {"bridge", "cloud", "layer", "adapter", "testfixtures"},
		"testfixtures": {"bridge", "cloud", "layer", "adapter"},
	}
	top := func(p string) string { f, _, _ := strings.Cut(strings.TrimPrefix(p, mod), "/"); return f }
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := top(fields[0])
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, mod) || top(imp) == from {
				continue
			}
			assert.Contains(t, allowed[from], top(imp), "%s imports %s", fields[0], imp)
		}
	}
}
