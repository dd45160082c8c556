package dap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLaunchFindsTheTemplateAsSamDoes: without "template" a launch takes template.yaml, .yml or .json in "cwd"
// (docs/dap.md), and a folder with none of them is refused naming all three, not only template.yaml.
func TestLaunchFindsTheTemplateAsSamDoes(t *testing.T) {
	empty := t.TempDir()
	_, err := parseLaunch(json.RawMessage(fmt.Sprintf(`{"cwd": %q}`, empty)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"template" is required: no template.yaml, template.yml or template.json in `+empty)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "template.yml"), []byte("Resources: {}\n"), 0o644))
	cfg, err := parseLaunch(json.RawMessage(fmt.Sprintf(`{"cwd": %q}`, dir)))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "template.yml"), cfg.Template)
}
