package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// binDir holds plldb and plldb-demo side by side, as `make demo` builds them.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plldb-demo-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for name, pkg := range map[string]string{"plldb": "github.com/plldb/plldb/cmd/plldb", "plldb-demo": "."} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput(); err != nil {
			panic("build " + name + ": " + err.Error() + "\n" + string(out))
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func runDemo(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "plldb-demo"), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func TestDemoStopsAtTheBreakpointAndTheCallerGetsTheResult(t *testing.T) {
	stdout, stderr, err := runDemo(t, "--python", pyenv.Python(t), "--log-level", "debug")
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	file := filepath.Join(apps.Dir("hello"), "src", "app.py")
	line, err := apps.BreakpointLine(file, "handler")
	require.NoError(t, err)
	// The invocations through plldb local, each answered after plldb local logged its end.
	assert.Contains(t, stdout, "$ plldb local --template "+apps.HelloTemplate())
	assert.Regexp(t, `END   HelloFunction \S+ [0-9.]+ ms ok\nHTTP 200 in \S+\n\{"statusCode": 200, "body": "\{\\"greeting\\": \\"hello from dev\\", \\"event\\": \{\\"name\\": \\"plldb\\"\}\}"\}\n`, stdout)
	// The error document as Lambda's Python runtime (awslambdaric) writes it.
	assert.Contains(t, stdout, "(X-Amz-Function-Error: Unhandled)\n"+`{"errorMessage": "boom", "errorType": "ValueError", "requestId": "`)
	assert.Contains(t, stdout, "shutting down: answering in-flight invocations")
	// The debug session through plldb dap.
	assert.Contains(t, stdout, "$ plldb dap --listen 127.0.0.1:0 --log-level debug\nDAP server listening at: 127.0.0.1:")
	assert.Contains(t, stdout, "stopped: breakpoint (thread ")
	assert.Regexp(t, `thread \d+: HelloFunction [0-9a-f]{8}\n`, stdout)
	assert.Contains(t, stdout, fmt.Sprintf("stack:\n  handler      %s:%d\n", file, line))
	assert.Contains(t, stdout, "  event    = {'name': 'plldb', 'debug': True}\n")
	assert.Contains(t, stdout, "evaluate context.function_name → 'HelloFunction'\n")
	assert.Contains(t, stdout, `continued; the caller got: {"statusCode": 200, "body": "{\"greeting\": \"hello from dev\", \"event\": {\"name\": \"plldb\", \"debug\": true}}"}`+"\n")
	// The user's --log-level reaches both plldb processes.
	assert.Contains(t, stderr, "level=DEBUG")
}

func TestDemoHonoursTheLogLevel(t *testing.T) {
	stdout, stderr, err := runDemo(t, "--python", pyenv.Python(t), "--log-level", "loud")
	require.Error(t, err)
	assert.Contains(t, stdout, "$ plldb local --template "+apps.HelloTemplate()+" --port 0 --python "+pyenv.Python(t)+" --log-level loud\n")
	assert.Contains(t, stderr, `plldb: --log-level "loud": want debug, info, warn or error`)
	assert.Contains(t, stderr, "plldb-demo: plldb local: exited (exit status 1)")
}

func TestDemoFindsPlldbBesideItself(t *testing.T) {
	alone := filepath.Join(t.TempDir(), "plldb-demo")
	data, err := os.ReadFile(filepath.Join(binDir, "plldb-demo"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(alone, data, 0o755))
	out, err := exec.Command(alone).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "plldb-demo: no plldb next to this program ("+filepath.Join(filepath.Dir(alone), "plldb")+"): build it (make build) or pass --plldb PATH")
}
