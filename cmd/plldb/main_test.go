package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

var plldbBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plldb-bin-")
	if err != nil {
		panic(err)
	}
	plldbBin = filepath.Join(dir, "plldb")
	if out, err := exec.Command("go", "build", "-o", plldbBin, ".").CombinedOutput(); err != nil {
		panic("build plldb: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// pythonApp writes a SAM project of one python3.12 function, name, whose handler is handler in app.py (source
// app), and returns its template's path.
func pythonApp(t *testing.T, name, app string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "src"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte(app), 0o644))
	tpl := filepath.Join(dir, "template.yaml")
	require.NoError(t, os.WriteFile(tpl, []byte("Transform: AWS::Serverless-2016-10-31\nResources:\n  "+name+
		":\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: src/\n      Handler: app.handler\n      Runtime: python3.12\n"), 0o644))
	return tpl
}

// startLocal runs `plldb local` and returns its Invoke endpoint, read from what it prints.
func startLocal(t *testing.T, template string, flags ...string) (*exec.Cmd, string, *logbuf.Buffer) {
	t.Helper()
	args := append([]string{"local", "--template", template, "--port", "0", "--python", pyenv.Python(t), "--log-level", "warn"}, flags...)
	cmd := exec.Command(plldbBin, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	out := &logbuf.Buffer{}
	endpoint := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if ep, ok := strings.CutPrefix(line, "Lambda Invoke endpoint: "); ok {
				endpoint <- ep
			}
		}
	}()
	select {
	case ep := <-endpoint:
		return cmd, ep, out
	case <-time.After(60 * time.Second):
		t.Fatalf("plldb local printed no endpoint\nstderr:\n%s", stderr.String())
		return nil, "", nil
	}
}

func TestLocalAnswersInFlightInvocationsOnCtrlC(t *testing.T) {
	tpl, err := apps.WriteSlow(t.TempDir(), 2)
	require.NoError(t, err)
	cmd, endpoint, out := startLocal(t, tpl)

	answer := make(chan string, 1)
	go func() {
		resp, err := http.Post(endpoint+"/2015-03-31/functions/Slow/invocations", "application/json", strings.NewReader(`{}`))
		if err != nil {
			answer <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer <- string(body)
	}()
	// Interrupt once the invocation is running.
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "START Slow") }, 30*time.Second, 20*time.Millisecond)
	// The banner's invoke command in both AWS CLI forms: v2 needs --cli-binary-format, v1 does not have it.
	assert.Contains(t, out.String(), "  aws lambda invoke --endpoint-url "+endpoint+" --function-name Slow --payload '{}' --cli-binary-format raw-in-base64-out out.json  # AWS CLI v2\n")
	assert.Contains(t, out.String(), "  aws lambda invoke --endpoint-url "+endpoint+" --function-name Slow --payload '{}' out.json  # AWS CLI v1\n")
	src, err := filepath.EvalSymlinks(filepath.Join(filepath.Dir(tpl), "src"))
	require.NoError(t, err)
	require.NotEmpty(t, processesIn(src), "the executor runs in the function's code folder")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))

	select {
	case a := <-answer:
		assert.Equal(t, `"finished"`, a, "the in-flight invocation is answered before plldb exits")
	case <-time.After(30 * time.Second):
		t.Fatal("in-flight invocation never answered")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		assert.NoError(t, err, "plldb local exits cleanly on Ctrl-C")
	case <-time.After(30 * time.Second):
		t.Fatal("plldb local did not exit")
	}
	assert.Empty(t, processesIn(src), "no executor process survives plldb local")
}

// processesIn lists the pids of processes whose working directory is dir (executors run in the code folder).
func processesIn(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var pids []string
	for _, e := range entries {
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestLocalReportsUnreadableTemplates(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "template.yaml")
	require.NoError(t, os.WriteFile(broken, []byte("Resources: [\n"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, plldbBin, "local", "--template", broken, "--port", "0").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), broken+":")

	out, err = exec.CommandContext(ctx, plldbBin, "local", "--template", apps.HelloTemplate(), "--functions", "NodeFunction", "--port", "0").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "not supported yet")
}

func TestUnknownCommandAndFlags(t *testing.T) {
	out, err := exec.Command(plldbBin, "frobnicate").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), `unknown command "frobnicate"`)
	out, err = exec.Command(plldbBin, "local", "--log-level", "loud").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "--log-level")
}

func TestErrorsNameTheCommandOnce(t *testing.T) {
	knockDir := filepath.Join(t.TempDir(), "knock") // no session file: plldb local --selective never ran
	cmd := exec.Command(plldbBin, "knock", "--local")
	cmd.Env = append(os.Environ(), "PLLDB_KNOCK_DIR="+knockDir)
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, "plldb knock: no selective session is running for \"local\"; start one with plldb local --selective\n", string(out))

	out, err = exec.Command(plldbBin, "frobnicate").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "\nplldb: unknown command", "a message without the command gets plldb's name")

	// A bad --route is the flag's fault, said before looking for a session; not "knock malformed", which is what
	// a refused token says.
	cmd = exec.Command(plldbBin, "knock", "--local", "--route", "GET")
	cmd.Env = append(os.Environ(), "PLLDB_KNOCK_DIR="+knockDir)
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, `plldb knock: --route "GET": route is not "METHOD /path"; want "METHOD /path/glob", e.g. 'POST /orders/*'`+"\n", string(out))

	// A route with a line that invokes the function with the event {}, no HTTP request: its knock could never
	// verify.
	cmd = exec.Command(plldbBin, "knock", "--local", "--route", "POST /orders/*", "--aws-cli")
	cmd.Env = append(os.Environ(), "PLLDB_KNOCK_DIR="+knockDir)
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	assert.Equal(t, "plldb knock: --route goes with the header and --curl: the --aws-cli and --boto3 lines invoke the function with the event {}, which is no HTTP request, so a knock bound to a route would be refused there\n", string(out))

	// plldb local's errors from starting its pipeline name it, as its flag errors do.
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	out, err = exec.Command(plldbBin, "local", "--template", missing, "--port", "0").CombinedOutput()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(string(out), "plldb local: "+missing+": cannot read template"), string(out))
	out, err = exec.Command(plldbBin, "local", "--template", apps.HelloTemplate(), "--host", "0.0.0.0", "--port", "0").CombinedOutput()
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(string(out), `plldb local: Invoke API host "0.0.0.0" is not a loopback address`), string(out))
}

func TestUsageListsEveryCommand(t *testing.T) {
	out, err := exec.Command(plldbBin, "help").CombinedOutput()
	require.NoError(t, err)
	for _, name := range []string{"attach", "dap", "detach", "install", "invoke", "local", "status", "uninstall", "version"} {
		assert.Regexp(t, `(?m)^  `+name+` +\S`, string(out))
	}
	assert.NotContains(t, string(out), "demo", "the demo is cmd/plldb-demo, not a plldb command")
}

// TestHelpAndBadFlagsOfEveryCommand: `plldb CMD --help` succeeds, as `plldb --help` does (and for invoke, whose 1
// means the function failed, it must not say 1); a flag a command does not have is said once, with the usage,
// not once by the flag set and again by main.
func TestHelpAndBadFlagsOfEveryCommand(t *testing.T) {
	for name := range commands {
		if name == "version" {
			continue // takes no flags
		}
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(plldbBin, name, "--help")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Run(), "plldb %s --help exits 0\n%s", name, stderr.String())
			assert.Empty(t, stdout.String(), "the usage goes to stderr")
			assert.Regexp(t, `(?i)^usage:? (of )?plldb `+name, stderr.String(), "the usage")
			assert.NotContains(t, stderr.String(), "plldb: ")

			cmd = exec.Command(plldbBin, name, "--no-such-flag")
			stdout.Reset()
			stderr.Reset()
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			want := 1
			if name == "invoke" {
				want = exitInvokeFailed // docs/invoke.md: a bad flag could not be invoked
			}
			assert.Equal(t, want, ee.ExitCode())
			assert.Equal(t, 1, strings.Count(stderr.String(), "flag provided but not defined: -no-such-flag"), stderr.String())
			assert.NotContains(t, stderr.String(), "plldb: flag provided")
		})
	}
}
