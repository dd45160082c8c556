package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/testfixtures/awsharness"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// awsApp is a deployed two-function stack on the offline harness and its settings before any attach.
type awsApp struct {
	h      *awsharness.Harness
	app    awsharness.App
	stack  string
	fns    map[string]awsharness.Deployed
	before map[string]awsharness.Settings
}

func newAWSApp(t *testing.T) *awsApp {
	t.Helper()
	h := awsharness.New(t, awsharness.Options{})
	app := awsharness.WriteApp(t)
	stack := "cli-" + h.Install.Name
	fns := h.DeployStack(t, stack, []awsharness.Function{
		{LogicalID: "OrdersFunction", CodeDir: app.Deployed, Env: map[string]string{"STAGE": "dev"}, Timeout: 5},
		{LogicalID: "UsersFunction", CodeDir: app.Deployed},
	})
	a := &awsApp{h: h, app: app, stack: stack, fns: fns, before: map[string]awsharness.Settings{}}
	for id, f := range fns {
		a.before[id] = h.Settings(t, f.Name)
	}
	return a
}

func (a *awsApp) env() []string { return append(os.Environ(), a.h.Moto.Env()...) }

func (a *awsApp) where(t *testing.T, logicalID string) string {
	t.Helper()
	resp, err := a.h.Invoke(context.Background(), a.fns[logicalID].Name, []byte(`{}`))
	require.NoError(t, err)
	require.False(t, resp.Error, "%s", resp.Payload)
	var out map[string]any
	require.NoError(t, json.Unmarshal(resp.Payload, &out))
	return out["where"].(string)
}

func (a *awsApp) assertRestored(t *testing.T) {
	t.Helper()
	for id, f := range a.fns {
		assert.Equal(t, a.before[id], a.h.Settings(t, f.Name), "%s is not as before attach", id)
	}
}

func (a *awsApp) assertInstrumented(t *testing.T) {
	t.Helper()
	for id, f := range a.fns {
		assert.Equal(t, int32(900), a.h.Settings(t, f.Name).Timeout, "%s is instrumented", id)
	}
}

var sessionLine = regexp.MustCompile(`session (s-[0-9a-f]+) attached`)

// attach runs `plldb attach` and returns once it says the functions are attached, with the session id.
func (a *awsApp) attach(t *testing.T, extra ...string) (*exec.Cmd, string, *logbuf.Buffer) {
	t.Helper()
	args := append([]string{"attach", "--stack-name", a.stack, "--name", a.h.Install.Name,
		"--template", a.app.Template, "--python", pyenv.Python(t), "--log-level", "warn"}, extra...)
	cmd := exec.Command(plldbBin, args...)
	cmd.Env = a.env()
	// Its own process group, so that cleanup also stops the executors a SIGKILLed plldb leaves behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &logbuf.Buffer{}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { stderr.WriteString(string(p)); return len(p), nil })
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	out := &logbuf.Buffer{}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		session := ""
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if m := sessionLine.FindStringSubmatch(line); m != nil {
				session = m[1]
			}
			if strings.HasPrefix(line, "Press Ctrl-C") {
				ready <- session
			}
		}
	}()
	select {
	case s := <-ready:
		require.NotEmpty(t, s, "no session id in\n%s", out.String())
		return cmd, s, out
	case <-time.After(2 * time.Minute):
		t.Fatalf("plldb attach did not attach\nstdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
		return nil, "", nil
	}
}

// crash SIGKILLs plldb attach and waits until the relay has seen its developer connection go.
func (a *awsApp) crash(t *testing.T, cmd *exec.Cmd, session string) {
	t.Helper()
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Eventually(t, func() bool {
		conns, err := a.h.Store.SessionConnections(context.Background(), session, wire.RoleDeveloper)
		return err == nil && len(conns) == 0
	}, 30*time.Second, 50*time.Millisecond, "the relay still counts the crashed developer as connected")
	a.assertInstrumented(t)
}

func TestAttachRestoresOnCtrlC(t *testing.T) {
	a := newAWSApp(t)
	cmd, _, out := a.attach(t)
	assert.Contains(t, out.String(), "debugpy at 127.0.0.1:")
	assert.Equal(t, "local", a.where(t, "OrdersFunction"))
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "plldb attach exits cleanly on Ctrl-C\n%s", out.String())
	a.assertRestored(t)
	assert.Equal(t, "deployed", a.where(t, "OrdersFunction"))
}

func TestDetachRestoresAfterACrash(t *testing.T) {
	a := newAWSApp(t)
	cmd, session, _ := a.attach(t)
	a.crash(t, cmd, session)

	detach := exec.Command(plldbBin, "detach", "--stack-name", a.stack, "--name", a.h.Install.Name, "--log-level", "warn")
	detach.Env = a.env()
	out, err := detach.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "restored")
	a.assertRestored(t)
	assert.Equal(t, "deployed", a.where(t, "UsersFunction"))
}

func TestNextAttachRestoresAfterACrash(t *testing.T) {
	a := newAWSApp(t)
	cmd, session, _ := a.attach(t)
	a.crash(t, cmd, session)

	cmd2, session2, out := a.attach(t)
	assert.NotEqual(t, session, session2)
	assert.Equal(t, "local", a.where(t, "OrdersFunction"), "the new session serves")
	require.NoError(t, cmd2.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd2.Wait(), "%s", out.String())
	a.assertRestored(t)
}

func TestAttachNeedsAStackName(t *testing.T) {
	out, err := exec.Command(plldbBin, "attach").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "--stack-name is required")
	out, err = exec.Command(plldbBin, "detach").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "--stack-name is required")
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRelayRestoresAnExpiredSession: the developer's connection goes away after the session expired, and the
// relay's $disconnect path puts the functions back from the snapshots, with no plldb process left to do it.
func TestRelayRestoresAnExpiredSession(t *testing.T) {
	a := newAWSApp(t)
	cmd, session, _ := a.attach(t)
	a.h.Clock.Advance(13 * time.Hour) // past the session's 12 h
	_, err := a.h.Store.GetSession(context.Background(), session)
	require.Error(t, err, "the session is expired")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	assert.Eventually(t, func() bool {
		for id, f := range a.fns {
			if !assert.ObjectsAreEqual(a.before[id], a.h.Settings(t, f.Name)) {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "the relay did not restore the functions of the expired session")
	a.assertRestored(t)
	assert.Equal(t, "deployed", a.where(t, "OrdersFunction"))
}

// TestAttachListenServesDAP: `plldb attach --listen` serves DAP; a launch with no attributes attaches to the
// stack given on the command line, and disconnecting restores the functions.
func TestAttachListenServesDAP(t *testing.T) {
	a := newAWSApp(t)
	cmd := exec.Command(plldbBin, "attach", "--stack-name", a.stack, "--name", a.h.Install.Name, "--functions", "OrdersFunction",
		"--template", a.app.Template, "--python", pyenv.Python(t), "--listen", "127.0.0.1:0", "--log-level", "warn")
	cmd.Env = a.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "DAP server listening at: "); ok {
				addr <- a
			}
		}
	}()
	var at string
	select {
	case at = <-addr:
	case <-time.After(time.Minute):
		t.Fatal("plldb attach --listen announced no address")
	}
	conn, err := net.Dial("tcp", at)
	require.NoError(t, err)
	c := daptest.New(conn)
	defer c.Close()
	c.Request(t, "initialize", map[string]any{"adapterID": "plldb"})
	c.Request(t, "launch", map[string]any{})
	c.ExpectOutputEventContaining(t, "attached to stack "+a.stack)
	assert.Equal(t, int32(900), a.h.Settings(t, a.fns["OrdersFunction"].Name).Timeout)
	assert.Equal(t, a.before["UsersFunction"], a.h.Settings(t, a.fns["UsersFunction"].Name), "--functions limits the attach")
	assert.Equal(t, "local", a.where(t, "OrdersFunction"))
	c.Request(t, "disconnect", nil)
	<-c.Done()
	assert.Eventually(t, func() bool {
		return assert.ObjectsAreEqual(a.before["OrdersFunction"], a.h.Settings(t, a.fns["OrdersFunction"].Name))
	}, 30*time.Second, 100*time.Millisecond, "disconnect restores")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait())
	a.assertRestored(t)
}

func TestStatusListsSessionsAndInstrumentedFunctions(t *testing.T) {
	a := newAWSApp(t)
	cmd, session, _ := a.attach(t)
	status := exec.Command(plldbBin, "status")
	status.Env = a.env()
	out, err := status.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), a.h.Install.Name+": stack")
	assert.Contains(t, string(out), "session "+session+" of ")
	assert.Contains(t, string(out), "developer last heard from ")
	assert.Contains(t, string(out), "instrumented: "+a.fns["OrdersFunction"].Name+" (session "+session+")")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait())
}

// TestStatusShowsAClaimBeingPutBack: while a session's detach is putting a function back (its claim marked
// releasing, as the detach marks it before restoring), `plldb status` says so; the detach then finishes.
func TestStatusShowsAClaimBeingPutBack(t *testing.T) {
	a := newAWSApp(t)
	cmd, session, _ := a.attach(t)
	orders := a.fns["OrdersFunction"]
	// The detach's own first step, taken here so that status runs while it stands.
	require.NoError(t, a.h.Store.MarkReleasing(context.Background(), orders.ARN, session))
	status := exec.Command(plldbBin, "status")
	status.Env = a.env()
	out, err := status.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "instrumented: "+orders.Name+" (session "+session+"; releasing: session "+session+" is putting it back)")
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait())
	a.assertRestored(t)
}

// sweep runs the helper stack's dead-man sweep, as the relay Lambda's schedule does, on the harness's store
// (whose clock the test moves).
func (a *awsApp) sweep(t *testing.T) instrument.SweepReport {
	t.Helper()
	report, err := instrument.NewSweeper(a.h.AWS, a.h.Store, 20*time.Minute, slog.New(slog.DiscardHandler)).Sweep(context.Background())
	require.NoError(t, err)
	return report
}

func (a *awsApp) assertUntagged(t *testing.T) {
	t.Helper()
	for id, f := range a.fns {
		out, err := a.h.Lambda.ListTags(context.Background(), &lambda.ListTagsInput{Resource: aws.String(f.ARN)})
		require.NoError(t, err)
		assert.NotContains(t, out.Tags, instrument.SessionTag, id)
	}
}

// TestTheSweepRestoresAfterTheDeveloperDied: plldb attach is SIGKILLed and nobody runs plldb again. The relay
// keeps the session (it is live, and its developer may come back), until the developer has been silent past the
// grace period: then the scheduled sweep puts every function back, with no plldb process alive.
func TestTheSweepRestoresAfterTheDeveloperDied(t *testing.T) {
	a := newAWSApp(t)
	cmd, session, _ := a.attach(t)
	a.crash(t, cmd, session)

	a.h.Clock.Advance(10 * time.Minute)
	assert.Empty(t, a.sweep(t).Swept, "within the grace period")
	a.assertInstrumented(t)

	a.h.Clock.Advance(15 * time.Minute)
	report := a.sweep(t)
	require.Len(t, report.Swept, 1)
	assert.Equal(t, session, report.Swept[0].Session)
	a.assertRestored(t)
	a.assertUntagged(t)
	assert.Equal(t, "deployed", a.where(t, "OrdersFunction"))
	_, err := a.h.Store.GetSession(context.Background(), session)
	assert.Error(t, err, "the session is over")
}

// TestTheSweepRestoresAnExpiredSessionWhoseDeveloperStaysConnected: the session expires while plldb attach
// still runs and its connection stays up, so no disconnect will ever trigger the relay's expiry path; the
// sweep restores the functions, and the later Ctrl-C finds nothing left to do.
func TestTheSweepRestoresAnExpiredSessionWhoseDeveloperStaysConnected(t *testing.T) {
	a := newAWSApp(t)
	cmd, session, out := a.attach(t)
	a.h.Clock.Advance(13 * time.Hour) // past the session's 12 h
	report := a.sweep(t)
	require.Len(t, report.Swept, 1)
	assert.Equal(t, session, report.Swept[0].Session)
	assert.Contains(t, report.Swept[0].Reason, "expired")
	a.assertRestored(t)
	a.assertUntagged(t)

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "plldb attach still exits cleanly\n%s", out.String())
	a.assertRestored(t)
}

// TestAttachListenKeepsTheSessionAcrossIDEs: an attach request to `plldb attach --listen` attaches the command
// to the stack; the IDE disconnects and attaches again, the functions stay instrumented all along (their
// invocations run here with or without an IDE), and Ctrl-C restores them.
func TestAttachListenKeepsTheSessionAcrossIDEs(t *testing.T) {
	a := newAWSApp(t)
	cmd, _, addr, out := startListening(t, a.env(), false, "attach", "--stack-name", a.stack, "--name", a.h.Install.Name,
		"--functions", "OrdersFunction", "--template", a.app.Template, "--python", pyenv.Python(t), "--listen", "127.0.0.1:0", "--log-level", "warn")
	c := attachIDE(t, addr, "")
	c.ExpectOutputEventContaining(t, "attached to stack "+a.stack)
	assert.Eventually(t, func() bool { return strings.Contains(out.String(), "attached to stack "+a.stack) }, 10*time.Second, 20*time.Millisecond,
		"the command says so too")
	a.assertInstrumentedOnly(t, "OrdersFunction")
	assert.Equal(t, "local", a.where(t, "OrdersFunction"))
	c.Request(t, "disconnect", nil)
	<-c.Done()

	// No IDE: the functions stay attached to this plldb, and their invocations still run here.
	a.assertInstrumentedOnly(t, "OrdersFunction")
	assert.Equal(t, "local", a.where(t, "OrdersFunction"))

	// A launch beside the attached session would attach the stack twice.
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c = daptest.NewT(t, conn)
	c.Request(t, "initialize", map[string]any{"adapterID": "plldb"})
	assert.Contains(t, c.RequestError(t, "launch", map[string]any{}).ErrorText(), `"request": "attach"`)
	c.Request(t, "disconnect", nil)
	<-c.Done()

	c = attachIDE(t, addr, "")
	c.ExpectOutputEventContaining(t, "attached to stack "+a.stack)
	assert.Equal(t, "local", a.where(t, "OrdersFunction"))
	c.Request(t, "disconnect", nil)
	<-c.Done()
	a.assertInstrumentedOnly(t, "OrdersFunction")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "plldb attach --listen exits cleanly on Ctrl-C\n%s", out.String())
	assert.Contains(t, out.String(), "plldb: detaching…")
	a.assertRestored(t)
	assert.Equal(t, "deployed", a.where(t, "OrdersFunction"))
}

// TestAttachListenNamesItsFunctionsFlag: `plldb attach --listen` attaches at the first attach request, from its
// own flags. When its --functions names a function the stack does not have, the IDE's refusal names that flag:
// the attach request has no "functions" for the user to look for. The stack is left as deployed.
func TestAttachListenNamesItsFunctionsFlag(t *testing.T) {
	a := newAWSApp(t)
	cmd, _, addr, out := startListening(t, a.env(), false, "attach", "--stack-name", a.stack, "--name", a.h.Install.Name,
		"--functions", "NoSuchFunction", "--template", a.app.Template, "--python", pyenv.Python(t), "--listen", "127.0.0.1:0", "--log-level", "warn")
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := daptest.NewT(t, conn)
	c.Request(t, "initialize", map[string]any{"adapterID": "plldb"})
	refusal := c.RequestError(t, "attach", map[string]any{"type": "plldb", "request": "attach", "name": "attach"}).ErrorText()
	assert.Contains(t, refusal, `plldb attach --functions: attach: the stack has no function "NoSuchFunction"`)
	assert.NotContains(t, refusal, `"functions"`)
	require.NoError(t, c.Close())

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait(), "plldb attach --listen exits cleanly on Ctrl-C\n%s", out.String())
	a.assertRestored(t)
}

// assertInstrumentedOnly checks that logicalID is instrumented and every other function is as deployed.
func (a *awsApp) assertInstrumentedOnly(t *testing.T, logicalID string) {
	t.Helper()
	for id, f := range a.fns {
		if id == logicalID {
			assert.Equal(t, int32(900), a.h.Settings(t, f.Name).Timeout, "%s is instrumented", id)
		} else {
			assert.Equal(t, a.before[id], a.h.Settings(t, f.Name), "%s is left alone", id)
		}
	}
}
