package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/layerzip"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// layerDir is where TestMain unpacked the layer zip, as Lambda unpacks it to /opt.
var layerDir string

func TestMain(m *testing.M) {
	if os.Getenv(goRuntimeEnv) == "1" {
		os.Exit(goRuntime())
	}
	os.Exit(runMain(m))
}

// goRuntimeEnv makes the test binary a minimal Go runtime (see goRuntime), for benchmarks that should measure
// the proxy rather than Python.
const goRuntimeEnv = "LAYER_TEST_GO_RUNTIME" // not PLLDB_*: the proxy withholds those from its child

// goRuntime answers every invocation with its own event until the Runtime API goes away.
func goRuntime() int {
	c := runtimeapi.NewClient(os.Getenv("AWS_LAMBDA_RUNTIME_API"), nil)
	ctx := context.Background()
	for {
		inv, err := c.Next(ctx)
		if err != nil {
			fmt.Fprintln(os.Stderr, "go runtime:", err)
			return 0
		}
		if err := c.Respond(ctx, inv.RequestID, inv.Event, nil); err != nil {
			fmt.Fprintln(os.Stderr, "go runtime:", err)
			return 1
		}
	}
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "plldb-layer-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	arch := layerzip.HostArch()
	if arch == "" {
		fmt.Fprintln(os.Stderr, "no Lambda architecture for this machine")
		return 1
	}
	zipPath := filepath.Join(tmp, "layer.zip")
	if err := layerzip.Build(context.Background(), layerzip.Options{Arch: arch, Out: zipPath}); err != nil {
		fmt.Fprintln(os.Stderr, "build layer:", err)
		return 1
	}
	layerDir = filepath.Join(tmp, "opt")
	if err := layerzip.Unzip(zipPath, layerDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// The package fails if a test leaves a goroutine running. Cleanup takes the exit code instead of exiting,
	// so the deferred removal runs.
	var code int
	goleak.VerifyTestMain(m, goleak.Cleanup(func(c int) { code = c }))
	return code
}

// fixtures is testfixtures/runtime: bootstrap.py and the test handlers.
func fixtures() string { return filepath.Join(pyenv.RepoRoot(), "testfixtures", "runtime") }

// baseEnv is a Lambda-like environment for the runtime; python3 on PATH is the test interpreter.
func baseEnv(t testing.TB, handler string) []string {
	py := pyenv.Python(t)
	return []string{
		"PATH=" + filepath.Dir(py) + ":" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"LAMBDA_TASK_ROOT=" + fixtures(),
		"_HANDLER=" + handler,
		"AWS_LAMBDA_FUNCTION_NAME=fn-under-test",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_REGION=eu-west-1",
		"AWS_EXECUTION_ENV=AWS_Lambda_python3.12",
		"PYTHONUNBUFFERED=1",
	}
}

// sandbox is an emulated Lambda execution environment: a stand-in Runtime API and a runtime process started
// the way a managed runtime's bootstrap starts it.
type sandbox struct {
	api    *runtimeapi.Server
	cmd    *exec.Cmd
	stdout *logbuf.Buffer
	stderr *logbuf.Buffer
	done   chan struct{}
	code   atomic.Int32
}

type sandboxOpts struct {
	handler string
	env     []string // added to baseEnv
	direct  bool     // no exec wrapper: the runtime talks to the stand-in itself
	wrapper string   // exec wrapper path; default the unpacked layer's
	// goRuntime runs this test binary as a minimal Go runtime instead of bootstrap.py.
	goRuntime bool
	// extraFiles are open in the sandbox from fd 3 on, as Lambda's telemetry pipe is.
	extraFiles []*os.File
}

func startSandbox(t testing.TB, o sandboxOpts) *sandbox {
	t.Helper()
	api := runtimeapi.NewServer(runtimeapi.ServerOptions{})
	require.NoError(t, api.Start(context.Background()))
	t.Cleanup(func() { _ = api.Close() })

	runtimeCmd := "python3 bootstrap.py"
	if o.goRuntime {
		exe, err := os.Executable()
		require.NoError(t, err)
		runtimeCmd = "'" + exe + "'"
		o.env = append(o.env, goRuntimeEnv+"=1")
	}
	script := `exec "$AWS_LAMBDA_EXEC_WRAPPER" ` + runtimeCmd + ` "$@"`
	if o.direct {
		script = `exec ` + runtimeCmd + ` "$@"`
	}
	wrapperPath := o.wrapper
	if wrapperPath == "" {
		wrapperPath = filepath.Join(layerDir, "plldb", "wrapper")
	}
	cmd := exec.Command("sh", "-c", script, "bootstrap")
	cmd.Dir = fixtures()
	cmd.Env = append(baseEnv(t, o.handler),
		"AWS_LAMBDA_RUNTIME_API="+api.Addr(),
		"AWS_LAMBDA_EXEC_WRAPPER="+wrapperPath)
	cmd.Env = append(cmd.Env, o.env...)
	sb := &sandbox{api: api, cmd: cmd, stdout: &logbuf.Buffer{}, stderr: &logbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = sb.stdout, sb.stderr
	cmd.ExtraFiles = o.extraFiles
	require.NoError(t, cmd.Start())
	go func() {
		_ = cmd.Wait()
		sb.code.Store(int32(cmd.ProcessState.ExitCode()))
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sb.code.Store(int32(128 + ws.Signal()))
		}
		close(sb.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sb.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-sb.done
		}
		if t.Failed() {
			t.Logf("runtime stdout:\n%s\nruntime stderr:\n%s", sb.stdout, sb.stderr)
		}
	})
	return sb
}

// waitExit waits for the runtime process to end and returns its exit code.
func (sb *sandbox) waitExit(t testing.TB) int {
	t.Helper()
	select {
	case <-sb.done:
		return int(sb.code.Load())
	case <-time.After(30 * time.Second):
		t.Fatalf("runtime process did not exit\nstderr:\n%s", sb.stderr)
		return -1
	}
}

func (sb *sandbox) invoke(t testing.TB, inv runtimeapi.Invocation) runtimeapi.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := sb.api.Invoke(ctx, inv)
	require.NoError(t, err, "stderr:\n%s", sb.stderr)
	return r
}

// memLink is an in-memory Link: the test plays the developer on the other end.
type memLink struct {
	connected atomic.Bool
	sent      chan *wire.Envelope // what the proxy sent
	recv      chan *wire.Envelope // what the proxy receives
	closeOnce sync.Once
	closed    chan struct{}
}

func newMemLink(connected bool) *memLink {
	l := &memLink{sent: make(chan *wire.Envelope, 64), recv: make(chan *wire.Envelope, 64), closed: make(chan struct{})}
	l.connected.Store(connected)
	return l
}

func (l *memLink) Send(ctx context.Context, e *wire.Envelope) error {
	if !l.connected.Load() {
		return errors.New("memlink: not connected")
	}
	select {
	case l.sent <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return errors.New("memlink: closed")
	}
}

func (l *memLink) Recv() <-chan *wire.Envelope { return l.recv }
func (l *memLink) Connected() bool             { return l.connected.Load() }
func (l *memLink) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

// inproc runs proxy.Run in this process (as `plldb local` does) between a stand-in Runtime API and the Python
// runtime, with an in-memory link to the test's developer.
type inproc struct {
	api    *runtimeapi.Server
	link   *memLink
	stdout *logbuf.Buffer
	logs   *logbuf.Buffer // the proxy's own log
	done   chan struct{}
	code   int
	err    error
}

func startInProc(t testing.TB, handler string, link *memLink, sc SessionConfig, extraEnv ...string) *inproc {
	t.Helper()
	api := runtimeapi.NewServer(runtimeapi.ServerOptions{})
	require.NoError(t, api.Start(context.Background()))
	t.Cleanup(func() { _ = api.Close() })
	env := append(baseEnv(t, handler), extraEnv...)
	sc.Dial = func(context.Context) (Link, error) { return link, nil }
	if sc.Function.Name == "" {
		sc.Function = wire.FunctionIdentity{Name: "fn-under-test", Runtime: "AWS_Lambda_python3.12", Handler: handler}
	}
	if sc.Env == nil {
		sc.Env = envMap(env)
	}
	ip := &inproc{api: api, link: link, stdout: &logbuf.Buffer{}, logs: &logbuf.Buffer{}, done: make(chan struct{})}
	childOut := &logbuf.Buffer{}
	cfg := Config{
		RuntimeAPI:  api.Addr(),
		Command:     []string{"python3", filepath.Join(fixtures(), "bootstrap.py")},
		Env:         env,
		Session:     &sc,
		Stdout:      ip.stdout,
		Logger:      slog.New(slog.NewTextHandler(ip.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ChildStdout: childOut,
		ChildStderr: childOut,
	}
	// exec.Command resolves python3 with this process's PATH.
	cfg.Command[0] = filepath.Join(filepath.Dir(pyenv.Python(t)), "python3")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(ip.done)
		ip.code, ip.err = Run(ctx, cfg)
	}()
	t.Cleanup(func() {
		cancel()
		<-ip.done
		if t.Failed() {
			t.Logf("runtime output:\n%s\nproxy log:\n%s", childOut, ip.logs)
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(ip.logs.String(), "connected to the plldb relay") },
		20*time.Second, 5*time.Millisecond, "the proxy dials at start")
	return ip
}

// expectSent returns the next envelope the proxy sent to the developer.
func (l *memLink) expectSent(t testing.TB) *wire.Envelope {
	t.Helper()
	select {
	case e := <-l.sent:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("proxy sent nothing to the developer")
		return nil
	}
}

func (l *memLink) deliver(t testing.TB, typ wire.Type, id string, body any) {
	t.Helper()
	raw, err := json.Marshal(body)
	require.NoError(t, err)
	l.recv <- &wire.Envelope{V: wire.Version, T: typ, ID: id, Body: raw}
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}
