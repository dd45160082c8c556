package executor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// interpreter finds a working pythonX.Y (on PATH, or in a pyenv install), or skips the test.
func interpreter(t *testing.T, version string) string {
	t.Helper()
	candidates := []string{"python" + version}
	root := os.Getenv("PYENV_ROOT")
	if root == "" {
		if home, err := os.UserHomeDir(); err == nil {
			root = filepath.Join(home, ".pyenv")
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(root, "versions", version+".*", "bin", "python"+version)); len(matches) > 0 {
		candidates = append(candidates, matches...)
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil && exec.Command(p, "-c", "pass").Run() == nil {
			return p
		}
	}
	t.Skipf("no working python%s here", version)
	return ""
}

// The executor promises Python 3.9 and later (the oldest Lambda runtime still offered).
func TestOldestSupportedPython(t *testing.T) {
	py := interpreter(t, "3.9")
	e, sink := start(t, Spec{Python: py, Runtime: "python3.9"}, map[string]string{"app.py": `import sys, logging
def handler(event, context):
    print('hi')
    logging.warning('w')
    if event.get('fail'):
        raise ValueError('bad')
    return {'version': list(sys.version_info[:2]), 'rid': context.aws_request_id}
`})
	assert.JSONEq(t, `{"version": [3, 9], "rid": "a"}`, string(invoke(t, e, Invocation{RequestID: "a"}).Payload))
	assert.Contains(t, sink.text("a", "stdout"), "hi\n")
	out := invoke(t, e, Invocation{Event: []byte(`{"fail": true}`)})
	require.NotNil(t, out.Err)
	assert.Equal(t, "ValueError", out.Err.ErrorType)
}

func TestTooOldPython(t *testing.T) {
	py := interpreter(t, "3.8")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app.py": "def handler(e, c):\n    return 1\n"})
	_, err := Start(context.Background(), Spec{LogicalID: "Fn", Handler: "app.handler", CodeDir: dir, Python: py}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs Python 3.9 or later")
}
