// Package rie runs AWS's Lambda Runtime Interface Emulator (RIE) with awslambdaric, AWS's own Python runtime
// client, for tests that compare plldb against what Lambda gives a handler and its caller.
//
// The emulator is built from the pinned source in ../shared/vendor/aws-lambda-rie (or $PLLDB_RIE_SRC) once per
// source version, into build/rie/ under the repository root, and awslambdaric comes from the project's
// virtualenv (requirements-dev.txt). Under CI=true a missing reference fails the test; elsewhere the test is
// skipped with a message that says how to get it.
//
// Start runs one emulator with a handler folder, either with the runtime alone or with an exec wrapper in front
// of it the way a managed runtime's bootstrap starts one. RIE itself knows nothing of AWS_LAMBDA_EXEC_WRAPPER:
// it runs its arguments as the runtime command. In Lambda the managed runtime's bootstrap script does
// `exec "$AWS_LAMBDA_EXEC_WRAPPER" python -m awslambdaric "$_HANDLER"`, so Start always runs
// testfixtures/rie/bootstrap, which does exactly that when the variable is set and `exec "$@"` otherwise.
package rie

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plldb/plldb/testfixtures/freeport"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// InvokePath is the emulator's invoke route (the Lambda Invoke API's path for the function "function").
const InvokePath = "/2015-03-31/functions/function/invocations"

// missing fails under CI and skips elsewhere: the reference implementations are part of CI's checkout, but a
// developer may not have them.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("rie: %s (CI=true: a missing reference is a failure)", msg)
	}
	t.Skipf("rie: %s", msg)
}

// Source is the folder of the emulator's source: ../shared/vendor/aws-lambda-rie beside the repository, else
// $PLLDB_RIE_SRC. It skips (fails under CI) when neither exists.
func Source(t testing.TB) string {
	t.Helper()
	candidates := []string{filepath.Join(pyenv.RepoRoot(), "..", "shared", "vendor", "aws-lambda-rie")}
	if env := os.Getenv("PLLDB_RIE_SRC"); env != "" {
		candidates = append(candidates, env)
	}
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "cmd", "aws-lambda-rie")); err == nil {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatalf("rie: %v", err)
			}
			return abs
		}
	}
	missing(t, "the Runtime Interface Emulator source is not at %s and PLLDB_RIE_SRC does not name it; "+
		"clone github.com/aws/aws-lambda-runtime-interface-emulator at the commit in shared/vendor/README.md "+
		"and set PLLDB_RIE_SRC to its folder", candidates[0])
	return ""
}

var (
	buildMu    sync.Mutex
	builtPaths = map[string]string{}
)

// Binary returns the emulator built from Source, building it when the cached binary is missing or was built
// from other sources. Concurrent test binaries build it once, under a file lock.
func Binary(t testing.TB) string {
	t.Helper()
	src := Source(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builtPaths[src]; ok {
		return bin
	}
	bin, err := build(src, filepath.Join(pyenv.RepoRoot(), "build", "rie"))
	if err != nil {
		t.Fatalf("rie: %v", err)
	}
	builtPaths[src] = bin
	return bin
}

// build compiles src into dir/aws-lambda-rie unless dir/aws-lambda-rie.src already records the same source
// hash.
func build(src, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	bin := filepath.Join(dir, "aws-lambda-rie")
	stamp := bin + ".src"
	sum, err := hashTree(src)
	if err != nil {
		return "", fmt.Errorf("hash emulator source %s: %w", src, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lock emulator build: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock emulator build: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if old, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(old)) == sum {
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build the emulator: the Go toolchain is needed on PATH: %w", err)
	}
	part := bin + ".part"
	// The source folder is read-only in CI: build with -o outside it, and keep the module cache writable so a
	// later `go clean -modcache` works.
	cmd := exec.Command(goCmd, "build", "-buildvcs=false", "-o", part, "./cmd/aws-lambda-rie")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-modcacherw", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the emulator in %s: %w\n%s", src, err, out)
	}
	if err := os.Rename(part, bin); err != nil {
		return "", fmt.Errorf("install the emulator: %w", err)
	}
	if err := os.WriteFile(stamp, []byte(sum+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("record the emulator's source hash: %w", err)
	}
	return bin, nil
}

// hashTree hashes the names and contents of the files under dir that go build reads.
func hashTree(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Python returns the test interpreter when awslambdaric is importable from it; it skips (fails under CI)
// otherwise.
func Python(t testing.TB) string {
	t.Helper()
	py := pyenv.Python(t)
	ricOnce.Do(func() {
		out, err := exec.Command(py, "-c", "import awslambdaric, runtime_client; print(awslambdaric.__version__)").CombinedOutput()
		if err != nil {
			ricErr = fmt.Errorf("%s cannot import awslambdaric: %w\n%s", py, err, out)
		}
	})
	if ricErr != nil {
		missing(t, "%v; `make venv` installs it (requirements-dev.txt), or `%s -m pip install awslambdaric==4.2.2`", ricErr, py)
	}
	return py
}

var (
	ricOnce sync.Once
	ricErr  error
)

// Bootstrap is the managed runtime's bootstrap in miniature: the exec wrapper when there is one, else the
// runtime command itself.
func Bootstrap() string { return filepath.Join(pyenv.RepoRoot(), "testfixtures", "rie", "bootstrap") }

// Options says which function to run and how.
type Options struct {
	// Dir is the handler folder: the runtime's working directory and LAMBDA_TASK_ROOT.
	Dir string
	// Handler is "module.function", the last argument of the runtime command as in Lambda.
	Handler string
	// Wrapper is an exec wrapper (AWS_LAMBDA_EXEC_WRAPPER), e.g. an unpacked layer's plldb/wrapper; empty: the
	// runtime alone.
	Wrapper string
	// Timeout is the function timeout in whole seconds (AWS_LAMBDA_FUNCTION_TIMEOUT); default 30.
	Timeout int
	// Env is added to the emulator's environment, which it hands on to the runtime.
	Env []string
	// ExtraFiles are open in the emulator from fd 3 on; the runtime inherits them (e.g. Lambda's telemetry log
	// pipe, named by _LAMBDA_TELEMETRY_LOG_FD in Env, which the emulator passes on).
	ExtraFiles []*os.File
}

// Emulator is a running RIE with its runtime.
type Emulator struct {
	URL    string // http://127.0.0.1:PORT
	Output *Buffer
	cmd    *exec.Cmd
	done   chan struct{}
	client *http.Client
}

// Start runs the emulator on a free loopback port; it stops when the test ends.
func Start(t testing.TB, o Options) *Emulator {
	t.Helper()
	bin := Binary(t)
	py := Python(t)
	if o.Timeout == 0 {
		o.Timeout = 30
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		t.Fatalf("rie: %v", err)
	}
	for attempt := 0; ; attempt++ {
		e, err := start(bin, py, dir, o)
		if err == nil {
			t.Cleanup(e.stop)
			return e
		}
		if attempt == 2 {
			t.Fatalf("rie: %v", err)
		}
	}
}

func start(bin, py, dir string, o Options) (*Emulator, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	apiAddr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", apiAddr,
		Bootstrap(), py, "-m", "awslambdaric", o.Handler,
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// The emulator gives the runtime its whole environment: keep it small and the same for every way of
	// running, so that what the handler sees differs only where plldb makes it differ.
	cmd.Env = []string{
		"PATH=" + filepath.Dir(py) + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"LAMBDA_TASK_ROOT=" + dir,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + fmt.Sprint(o.Timeout),
		"AWS_LAMBDA_FUNCTION_NAME=plldb-rie-test",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_REGION=eu-west-1",
		"AWS_DEFAULT_REGION=eu-west-1",
		"AWS_EXECUTION_ENV=AWS_Lambda_python3.12",
		"LOG_LEVEL=info",
	}
	if o.Wrapper != "" {
		cmd.Env = append(cmd.Env, "AWS_LAMBDA_EXEC_WRAPPER="+o.Wrapper)
	}
	cmd.Env = append(cmd.Env, o.Env...)
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = o.ExtraFiles
	// Its own process group, so that stopping it takes the runtime along; and it dies with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	e := &Emulator{
		URL: "http://" + addr, Output: out, cmd: cmd, done: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 4}},
	}
	go func() {
		_ = cmd.Wait()
		close(e.done)
	}()
	// RIE starts the runtime on the first invocation; it is ready once it listens.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("the emulator exited at start (port taken?):\n%s", out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			e.stop()
			return nil, fmt.Errorf("the emulator does not listen on %s after 30 s:\n%s", addr, out)
		}
	}
}

func (e *Emulator) stop() {
	e.client.CloseIdleConnections()
	// The runtime runs in a process group of RIE's making: collect it before RIE goes.
	pids, _ := e.RuntimePids()
	defer func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-e.done
	}
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
}

// Pid is the emulator's process id (the leader of its process group).
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Reply is what the caller of an invocation got.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// Invoke posts body to the emulator's Invoke API and returns its answer.
func (e *Emulator) Invoke(ctx context.Context, body []byte, hdr http.Header) (Reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+InvokePath, strings.NewReader(string(body)))
	if err != nil {
		return Reply{}, fmt.Errorf("invoke: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("invoke %s: %w", e.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, fmt.Errorf("invoke %s: read answer: %w", e.URL, err)
	}
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// RuntimePids lists the emulator's descendants: the runtime, or the wrapper's proxy and its runtime. (RIE
// starts the runtime in a process group of its own.)
func (e *Emulator) RuntimePids() ([]int, error) {
	return descendants(e.Pid())
}

func descendants(root int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	children := map[int][]int{}
	for _, d := range entries {
		var pid int
		if _, err := fmt.Sscanf(d.Name(), "%d", &pid); err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name's closing parenthesis: state, ppid, …
		i := strings.LastIndexByte(string(raw), ')')
		f := strings.Fields(string(raw[i+1:]))
		var ppid int
		if i < 0 || len(f) < 2 {
			continue
		}
		if _, err := fmt.Sscanf(f[1], "%d", &ppid); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// ProcessName is the command name of pid (/proc/PID/comm).
func ProcessName(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "", fmt.Errorf("read process name: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ErrNotFound is returned by FindProcess when no process of that name runs under the emulator.
var ErrNotFound = errors.New("no such process under the emulator")

// FindProcess returns the pid of the first process named name among the emulator's descendants.
func (e *Emulator) FindProcess(name string) (int, error) {
	pids, err := e.RuntimePids()
	if err != nil {
		return 0, err
	}
	for _, pid := range pids {
		if n, err := ProcessName(pid); err == nil && n == name {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("%s: %w", name, ErrNotFound)
}

// Buffer collects a process's output; safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// Len is the number of bytes written so far.
func (b *Buffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.b)
}
