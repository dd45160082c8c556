package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/pyenv"
)

// TestLocalFindsTheTemplateAsSamDoes: with no --template, plldb local reads template.yaml, template.yml or
// template.json in the current folder, and says which folder it searched when there is none.
func TestLocalFindsTheTemplateAsSamDoes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	empty := t.TempDir()
	cmd := exec.CommandContext(ctx, plldbBin, "local", "--port", "0")
	cmd.Dir = empty
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "template.yaml, template.yml, template.json")
	real, _ := filepath.EvalSymlinks(empty)
	assert.True(t, strings.Contains(string(out), empty) || strings.Contains(string(out), real), "names the folder searched: %s", out)

	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte("def handler(event, context):\n    return 1\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "template.yml"), []byte(`Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.12}
`), 0o644))
	cmd = exec.CommandContext(ctx, plldbBin, "local", "--port", "0", "--python", pyenv.Python(t), "--log-level", "warn")
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	served := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "Lambda Invoke endpoint: ") {
			served = true
			break
		}
	}
	assert.True(t, served, "plldb local serves the functions of template.yml")
}
