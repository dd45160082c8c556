package aws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/testfixtures/awsharness"
)

type fixture struct {
	h      *awsharness.Harness
	stack  string
	fns    map[string]awsharness.Deployed
	before map[string]awsharness.Settings
}

func newFixture(t testing.TB) *fixture { return newFixtureWith(t, awsharness.Options{}) }

func newFixtureWith(t testing.TB, o awsharness.Options) *fixture {
	t.Helper()
	h := awsharness.New(t, o)
	stack := stackName("app-" + t.Name())
	deployed, err := filepath.Abs("testdata/deployed")
	require.NoError(t, err)
	fns := h.DeployStack(t, stack, []awsharness.Function{
		{LogicalID: "OrdersFunction", CodeDir: deployed, Env: map[string]string{"STAGE": "dev", "TABLE": "orders"}, Timeout: 7},
		{LogicalID: "UsersFunction", CodeDir: deployed},
	})
	f := &fixture{h: h, stack: stack, fns: fns, before: map[string]awsharness.Settings{}}
	for id, fn := range fns {
		f.before[id] = h.Settings(t, fn.Name)
	}
	return f
}

var stackSeq atomic.Int64

// stackName names a test's stack after base, at most 40 characters, and unique in the test binary: moto lives as
// long as the binary, so with -count=N every run of a test deploys its own stack instead of meeting the stack
// of the run before (CreateStack: AlreadyExistsException), and a flaky test can be rerun in one process.
func stackName(base string) string {
	suffix := fmt.Sprintf("-%d", stackSeq.Add(1))
	name := strings.ToLower(strings.ReplaceAll(base, "/", "-"))
	if len(name) > 40-len(suffix) {
		name = name[:40-len(suffix)]
	}
	return name + suffix
}

// options attach the fixture's stack. The session logs to the harness's logger, so that its warnings (a relay
// dial retried after a 5xx, a failed clean-up) show beside the relay's when a test fails.
func (f *fixture) options() awsmode.Options {
	in := f.h.Install
	return awsmode.Options{
		StackName: f.stack, Template: "testdata/app/template.yaml", Python: f.h.Python,
		AWS: f.h.AWS, Install: &in, Logger: f.h.Logger.With("side", "attach"),
	}
}

func (f *fixture) invoke(t *testing.T, logicalID string) map[string]any {
	t.Helper()
	resp, err := f.h.Invoke(context.Background(), f.fns[logicalID].Name, []byte(`{"n":1}`))
	require.NoError(t, err)
	require.False(t, resp.Error, "invocation failed: %s", resp.Payload)
	var out map[string]any
	require.NoError(t, json.Unmarshal(resp.Payload, &out), "payload %s", resp.Payload)
	return out
}

func (f *fixture) assertRestored(t *testing.T) {
	t.Helper()
	for id, fn := range f.fns {
		assert.Equal(t, f.before[id], f.h.Settings(t, fn.Name), "function %s is not as it was before attach", id)
	}
}

func TestAttachRelaysInvocationsAndCloseRestores(t *testing.T) {
	before := goleak.IgnoreCurrent()
	// Registered before the harness's own cleanup, so it runs after the harness has closed: then nothing of the
	// session, the harness or the sandboxes may be left.
	// The moto server, started once per package, outlives every test; its output is read by os/exec.
	t.Cleanup(func() {
		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("os/exec.(*Cmd).writerDescriptor.func1"))
	})
	f := newFixture(t)
	assert.Equal(t, "deployed", f.invoke(t, "OrdersFunction")["where"], "before attach the deployed code answers")

	s, err := awsmode.Attach(context.Background(), f.options())
	require.NoError(t, err)
	require.Len(t, s.Functions(), 2)
	during := f.h.Settings(t, f.fns["OrdersFunction"].Name)
	assert.Equal(t, int32(900), during.Timeout)
	assert.Equal(t, instrument.WrapperPath, during.Environment[instrument.EnvExecWrapper])
	assert.Equal(t, "orders", during.Environment["TABLE"], "the function's own variables stay")

	out := f.invoke(t, "OrdersFunction")
	assert.Equal(t, "local", out["where"], "attached, the local code answers")
	assert.Equal(t, map[string]any{"n": float64(1)}, out["event"])
	assert.Equal(t, "local", f.invoke(t, "UsersFunction")["where"])
	require.ErrorContains(t, goleak.Find(before), "adapter/devside", "the leak check sees a live session's goroutines")
	for _, fn := range f.fns {
		assert.Equal(t, s.ID, f.tags(t, fn.ARN)[instrument.SessionTag], "attached functions carry their session's tag")
	}

	results, err := s.Close(context.Background())
	require.NoError(t, err)
	require.Len(t, results, 2)
	for _, r := range results {
		assert.Equal(t, instrument.Restored, r.Outcome, r.Message)
	}
	f.assertRestored(t)
	assert.Equal(t, "deployed", f.invoke(t, "OrdersFunction")["where"], "after close the deployed code answers again")
	_, err = f.h.Store.GetSession(context.Background(), s.ID)
	assert.Error(t, err, "the session is deleted")
	for _, fn := range f.fns {
		assert.NotContains(t, f.tags(t, fn.ARN), instrument.SessionTag, "a restored function loses the session tag")
	}
}

func (f *fixture) tags(t *testing.T, arn string) map[string]string {
	t.Helper()
	out, err := f.h.Lambda.ListTags(context.Background(), &lambda.ListTagsInput{Resource: aws.String(arn)})
	require.NoError(t, err)
	return out.Tags
}

func TestSecondDeveloperIsRefusedNamingTheHolder(t *testing.T) {
	f := newFixture(t)
	o := f.options()
	o.Owner = "alice@laptop"
	first, err := awsmode.Attach(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = first.Close(context.Background()) })
	attached := f.h.Settings(t, f.fns["OrdersFunction"].Name)

	o.Owner = "bob@desk"
	_, err = awsmode.Attach(context.Background(), o)
	require.Error(t, err)
	var refused *instrument.RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Contains(t, err.Error(), first.ID)
	assert.Contains(t, err.Error(), "alice@laptop")
	assert.Equal(t, attached, f.h.Settings(t, f.fns["OrdersFunction"].Name), "the refused attach changed nothing")
	assert.Equal(t, "local", f.invoke(t, "OrdersFunction")["where"], "the first session still serves")
	// The relay role may restore only functions tagged with their session: a refused attach must not take the
	// first session's tag away (it used to untag every function on its way out).
	for id, fn := range f.fns {
		assert.Equal(t, first.ID, f.tags(t, fn.ARN)[instrument.SessionTag], "%s keeps the first session's tag", id)
	}
}

func TestAttachNeedsAStackAndKnownFunctions(t *testing.T) {
	f := newFixture(t)
	o := f.options()
	o.StackName = ""
	_, err := awsmode.Attach(context.Background(), o)
	assert.ErrorContains(t, err, "stack name is required")

	o = f.options()
	o.Functions = []string{"NoSuchFunction"}
	_, err = awsmode.Attach(context.Background(), o)
	assert.ErrorContains(t, err, `no function "NoSuchFunction"`)
	assert.ErrorAs(t, err, new(*template.FunctionsError), "a refusal of a function asked for by name")
	f.assertRestored(t)
}

// TestCloseMergesAConcurrentChange: a change between attach and detach stays; Close takes out only plldb's
// changes from that function, says what it kept, and restores the others exactly.
func TestCloseMergesAConcurrentChange(t *testing.T) {
	f := newFixture(t)
	s, err := awsmode.Attach(context.Background(), f.options())
	require.NoError(t, err)
	orders := f.fns["OrdersFunction"].Name
	_, err = f.h.Lambda.UpdateFunctionConfiguration(context.Background(), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String(orders), Timeout: aws.Int32(33),
	})
	require.NoError(t, err)

	results, err := s.Close(context.Background())
	require.NoError(t, err)
	byName := map[string]instrument.Result{}
	for _, r := range results {
		byName[r.FunctionName] = r
	}
	assert.Equal(t, instrument.Merged, byName[orders].Outcome, byName[orders].Message)
	assert.Contains(t, byName[orders].Message, "timeout 33 s")
	want := f.before["OrdersFunction"]
	want.Timeout = 33
	assert.Equal(t, want, f.h.Settings(t, orders), "the other change stands, plldb's are gone")
	assert.NotContains(t, f.tags(t, f.fns["OrdersFunction"].ARN), instrument.SessionTag)
	users := f.fns["UsersFunction"].Name
	assert.Equal(t, instrument.Restored, byName[users].Outcome)
	assert.Equal(t, f.before["UsersFunction"], f.h.Settings(t, users))
}

// TestWithoutALocalTemplateTheDeployedOneIsRead: no --template and no template.yaml here, so attach maps the
// functions through the deployed stack's template (GetTemplate); its inline code is no local Python code, which
// attach says, changing nothing.
func TestWithoutALocalTemplateTheDeployedOneIsRead(t *testing.T) {
	f := newFixture(t)
	o := f.options()
	o.Template = ""
	o.Dir = t.TempDir() // no template.yaml there
	_, err := awsmode.Attach(context.Background(), o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "none of the 2 function(s) of the stack has local Python code")
	assert.Contains(t, err.Error(), "the stack's deployed template (no template.yaml, template.yml, template.json in "+o.Dir)
	f.assertRestored(t)
}

// TestATemplateYmlIsFoundAsSamFindsIt: with no --template, template.yml in the folder maps the functions.
func TestATemplateYmlIsFoundAsSamFindsIt(t *testing.T) {
	f := newFixture(t)
	o := f.options()
	o.Template = ""
	o.Dir = t.TempDir()
	body, err := os.ReadFile("testdata/app/template.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(o.Dir, "template.yml"), body, 0o644))
	require.NoError(t, os.CopyFS(filepath.Join(o.Dir, "src"), os.DirFS("testdata/app/src")))
	s, err := awsmode.Attach(context.Background(), o)
	require.NoError(t, err)
	require.Len(t, s.Functions(), 2)
	assert.Equal(t, "local", f.invoke(t, "OrdersFunction")["where"])
	_, err = s.Close(context.Background())
	require.NoError(t, err)
	f.assertRestored(t)
}

// TestAStackThatIsNotThereNamesTheRegionAndAccount: a wrong --region must read as such.
func TestAStackThatIsNotThereNamesTheRegionAndAccount(t *testing.T) {
	f := newFixture(t)
	o := f.options()
	o.StackName = "no-such-app"
	_, err := awsmode.Attach(context.Background(), o)
	require.Error(t, err)
	for _, w := range []string{`no stack "no-such-app"`, "region us-east-1 of account 123456789012", "--region"} {
		assert.Contains(t, err.Error(), w)
	}
	_, err = awsmode.Detach(context.Background(), awsmode.DetachOptions{StackName: "no-such-app", AWS: f.h.AWS, Install: &f.h.Install})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "region us-east-1 of account 123456789012")
}

// TestAttachTwelveFunctions attaches a 12-function stack (instrumented in parallel), relays an invocation of
// each, and restores every one of them exactly. Pagination and nested stacks of the discovery are covered in
// cloud/instrument, against a paginating wrapper: moto answers ListStackResources in one page.
func TestAttachTwelveFunctions(t *testing.T) {
	h := awsharness.New(t, awsharness.Options{})
	deployed, err := filepath.Abs("testdata/deployed")
	require.NoError(t, err)
	src, err := filepath.Abs("testdata/app/src")
	require.NoError(t, err)
	var fns []awsharness.Function
	var tpl strings.Builder
	tpl.WriteString("Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Runtime: python3.12\n    Timeout: 10\nResources:\n")
	for i := range 12 {
		id := fmt.Sprintf("Fn%02d", i)
		fns = append(fns, awsharness.Function{LogicalID: id, CodeDir: deployed, Env: map[string]string{"N": fmt.Sprint(i)}})
		fmt.Fprintf(&tpl, "  %s:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: %s\n      Handler: app.handler\n", id, src)
	}
	stack := stackName("app-twelve")
	deployedFns := h.DeployStack(t, stack, fns)
	before := map[string]awsharness.Settings{}
	for id, fn := range deployedFns {
		before[id] = h.Settings(t, fn.Name)
	}
	template := filepath.Join(t.TempDir(), "template.yaml")
	require.NoError(t, os.WriteFile(template, []byte(tpl.String()), 0o644))

	in := h.Install
	s, err := awsmode.Attach(context.Background(), awsmode.Options{
		StackName: stack, Template: template, Python: h.Python, AWS: h.AWS, Install: &in,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.Len(t, s.Functions(), 12)
	for id, fn := range deployedFns {
		during := h.Settings(t, fn.Name)
		assert.Equal(t, instrument.WrapperPath, during.Environment[instrument.EnvExecWrapper], id)
		resp, err := h.Invoke(context.Background(), fn.Name, []byte(`{}`))
		require.NoError(t, err)
		assert.Contains(t, string(resp.Payload), `"local"`, "%s answered from the local code", id)
	}
	results, err := s.Close(context.Background())
	require.NoError(t, err)
	require.Len(t, results, 12)
	for id, fn := range deployedFns {
		assert.Equal(t, before[id], h.Settings(t, fn.Name), "function %s restored exactly", id)
	}
}
