package template

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

func appDir(t *testing.T, name string) string {
	t.Helper()
	dir := apps.Dir(name)
	require.DirExists(t, dir)
	return dir
}

func TestHelloApp(t *testing.T) {
	dir := appDir(t, "hello")
	file := filepath.Join(dir, "template.yaml")
	tmpl, err := Load(file)
	require.NoError(t, err)

	assert.Equal(t, file, tmpl.Path)
	assert.Equal(t, map[string]string{"Stage": "dev"}, tmpl.Parameters)
	src := filepath.Join(dir, "src")

	want := []Function{
		{
			LogicalID: "FailingFunction", Name: "FailingFunction", Type: TypeServerlessFunction,
			Runtime: "python3.12", Handler: "app.fail", CodeDir: src, Timeout: 10, MemoryMB: 256,
			Architecture: "x86_64", Env: map[string]string{"APP_STAGE": "dev", "SHARED": "global"},
			Supported: true, Source: Position{File: file, Line: 47, Column: 3},
		},
		{
			LogicalID: "HelloFunction", Name: "HelloFunction", Type: TypeServerlessFunction,
			Runtime: "python3.12", Handler: "app.handler", CodeDir: src, Timeout: 10, MemoryMB: 256,
			Architecture: "x86_64", Env: map[string]string{"APP_STAGE": "dev", "SHARED": "global"},
			Supported: true, Source: Position{File: file, Line: 24, Column: 3},
		},
		{
			LogicalID: "NodeFunction", Name: "NodeFunction", Type: TypeServerlessFunction,
			Runtime: "nodejs20.x", Handler: "index.handler", CodeDir: filepath.Join(dir, "node"), Timeout: 10,
			MemoryMB: 256, Architecture: "x86_64", Env: map[string]string{"APP_STAGE": "dev", "SHARED": "global"},
			Reason: `runtime "nodejs20.x" is not supported yet (only Python runtimes)`,
			Source: Position{File: file, Line: 53, Column: 3},
		},
		{
			LogicalID: "PackageFunction", Name: "local-orders-dev", Type: TypeServerlessFunction,
			Runtime: "python3.12", Handler: "pkg.orders.handler", CodeDir: src,
			Timeout: 30, MemoryMB: 256, Architecture: "arm64", // function's Timeout and Architectures win
			Env: map[string]string{
				"APP_STAGE":  "dev",         // from Globals, !Ref Stage
				"SHARED":     "function",    // function overrides the global
				"TABLE_NAME": "OrdersTable", // !Ref of a resource: its logical id
				"MAX_ITEMS":  "25",          // numbers and booleans as CloudFormation stringifies them
				"VERBOSE":    "true",
			},
			Layers: []Layer{{
				LogicalID: "SharedLayer", Dir: filepath.Join(dir, "layer"),
				PythonDir: filepath.Join(dir, "layer", "python"),
			}},
			Supported: true, Source: Position{File: file, Line: 30, Column: 3},
		},
	}
	assert.Equal(t, want, tmpl.Functions)

	// The positions point at the logical ids.
	lines := strings.Split(readFile(t, file), "\n")
	for _, f := range tmpl.Functions {
		assert.Equal(t, f.LogicalID+":", strings.TrimSpace(lines[f.Source.Line-1][f.Source.Column-1:]))
	}

	f, ok := tmpl.Function("PackageFunction")
	require.True(t, ok)
	assert.Equal(t, "pkg.orders.handler", f.Handler)
	byName, ok := tmpl.Function("local-orders-dev")
	require.True(t, ok, "lookup by FunctionName")
	assert.Same(t, f, byName)
	_, ok = tmpl.Function("NoSuchFunction")
	assert.False(t, ok)

	var supported []string
	for _, f := range tmpl.Supported() {
		supported = append(supported, f.LogicalID)
	}
	assert.Equal(t, []string{"FailingFunction", "HelloFunction", "PackageFunction"}, supported)

	// Given the folder, Load finds template.yaml.
	again, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, tmpl, again)
}

func TestHelloParameterOverrides(t *testing.T) {
	tmpl, err := LoadWith(appDir(t, "hello"), LoadOptions{Parameters: map[string]string{
		"Stage": "prod", "AWS::StackName": "shop", "Undeclared": "ignored",
	}})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"Stage": "prod"}, tmpl.Parameters)
	f, ok := tmpl.Function("PackageFunction")
	require.True(t, ok)
	assert.Equal(t, "shop-orders-prod", f.Name)
	assert.Equal(t, "prod", f.Env["APP_STAGE"])
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// runHandlers is a Python script that checks the fixture handlers the way later tests use them: the first
// statement of each handler is on a line marked "# BREAKPOINT", and calling the handler with the template's
// environment and sys.path (code folder, then layers' python folders) gives the expected result.
const runHandlers = `
import ast, importlib, inspect, json, sys
spec = json.loads(sys.argv[1])
sys.path[:0] = spec["path"]
mod_name, fn_name = spec["handler"].rsplit(".", 1)
mod = importlib.import_module(mod_name)
fn = getattr(mod, fn_name)
src_file = inspect.getsourcefile(fn)
lines = open(src_file).read().splitlines()
tree = ast.parse("\n".join(lines))
body = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == fn_name][0].body
first = body[0]
if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
    first = body[1]  # a docstring is not a statement to break on
out = {"breakpoint_marked": "# BREAKPOINT" in lines[first.lineno - 1], "file": src_file}
try:
    out["result"] = fn(spec["event"], None)
except Exception as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
`

func TestHelloHandlersRun(t *testing.T) {
	python := pyenv.Python(t)
	tmpl, err := Load(appDir(t, "hello"))
	require.NoError(t, err)

	run := func(t *testing.T, f *Function, event any) map[string]any {
		t.Helper()
		path := []string{f.CodeDir}
		for _, l := range f.Layers {
			path = append(path, l.PythonDir)
		}
		spec, err := json.Marshal(map[string]any{"handler": f.Handler, "path": path, "event": event})
		require.NoError(t, err)
		cmd := exec.CommandContext(t.Context(), python, "-c", runHandlers, string(spec))
		cmd.Env = []string{"PYTHONDONTWRITEBYTECODE=1"}
		for k, v := range f.Env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.Output()
		require.NoError(t, err, "%s: %s", f.LogicalID, out)
		var res map[string]any
		require.NoError(t, json.Unmarshal(out, &res), "%s", out)
		assert.Equal(t, true, res["breakpoint_marked"], "%s: first statement of %s is not marked # BREAKPOINT", f.LogicalID, res["file"])
		return res
	}

	hello, _ := tmpl.Function("HelloFunction")
	res := run(t, hello, map[string]any{"name": "ada"})
	result := res["result"].(map[string]any)
	assert.Equal(t, float64(200), result["statusCode"])
	assert.JSONEq(t, `{"greeting": "hello from dev", "event": {"name": "ada"}}`, result["body"].(string))

	orders, _ := tmpl.Function("PackageFunction")
	res = run(t, orders, map[string]any{"items": []int{1, 2, 3}})
	assert.Equal(t, map[string]any{"table": "OrdersTable", "shared": "function", "stage": "dev", "count": float64(3)}, res["result"])

	failing, _ := tmpl.Function("FailingFunction")
	res = run(t, failing, map[string]any{})
	assert.Equal(t, "ValueError: boom", res["error"])

	cdk, err := Load(filepath.Join(appDir(t, "cdk"), "HelloCdkStack.template.json"))
	require.NoError(t, err)
	handler, ok := cdk.Function("Handler886CB40B")
	require.True(t, ok)
	res = run(t, handler, map[string]any{"n": 21})
	assert.Equal(t, map[string]any{"region": "us-east-1", "doubled": float64(42)}, res["result"])
}
