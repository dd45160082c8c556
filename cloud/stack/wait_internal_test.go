package stack

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeEvent is one stack event the fake CloudFormation reports.
type fakeEvent struct{ id, logical, kind, status, reason string }

// fakeStep is what one DescribeStacks call finds: the stack's status, and the events that appeared with it.
type fakeStep struct {
	status string // "GONE": the stack no longer exists
	reason string
	events []fakeEvent
}

// fakeCFN plays CloudFormation's query API for DescribeStacks and DescribeStackEvents, stepping through a
// script: moto's CloudFormation reports no per-resource events, so the watcher's live view is tested here.
type fakeCFN struct {
	mu         sync.Mutex
	steps      []fakeStep
	next       int
	status     string
	events     []fakeEvent // newest first, as CloudFormation lists them
	onDescribe func(n int)

	tag       string                // the stack's plldb:install tag ("" none)
	scripts   map[string][]fakeStep // what CreateStack, UpdateStack, DeleteStack set in motion
	noUpdates bool                  // UpdateStack answers "No updates are to be performed."
	calls     []string              // the mutating actions called, in order
}

func (f *fakeCFN) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	switch action := r.Form.Get("Action"); action {
	case "CreateStack", "UpdateStack", "DeleteStack":
		f.calls = append(f.calls, action)
		if action == "UpdateStack" && f.noUpdates {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>No updates are to be performed.</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
			return
		}
		f.steps, f.next = f.scripts[action], 0
		if action == "DeleteStack" {
			fmt.Fprint(w, `<DeleteStackResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DeleteStackResponse>`)
			return
		}
		fmt.Fprintf(w, `<%[1]sResponse><%[1]sResult><StackId>arn:s</StackId></%[1]sResult></%[1]sResponse>`, action)
	case "DescribeStacks":
		if f.next < len(f.steps) {
			st := f.steps[f.next]
			f.status = st.status
			for _, e := range st.events {
				f.events = append([]fakeEvent{e}, f.events...)
			}
			f.next++
			if f.onDescribe != nil {
				f.onDescribe(f.next)
			}
		}
		if f.status == "GONE" || f.status == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id s does not exist</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
			return
		}
		reason := ""
		if f.next > 0 {
			reason = f.steps[f.next-1].reason
		}
		tags := ""
		if f.tag != "" {
			tags = fmt.Sprintf(`<Tags><member><Key>%s</Key><Value>%s</Value></member></Tags>`, InstallTag, f.tag)
		}
		fmt.Fprintf(w, `<DescribeStacksResponse><DescribeStacksResult><Stacks><member><StackName>s</StackName><StackId>arn:s</StackId>`+
			`<StackStatus>%s</StackStatus><StackStatusReason>%s</StackStatusReason><CreationTime>2026-01-01T00:00:00Z</CreationTime>%s</member></Stacks></DescribeStacksResult></DescribeStacksResponse>`, f.status, reason, tags)
	case "DescribeStackEvents":
		var b strings.Builder
		for _, e := range f.events {
			fmt.Fprintf(&b, `<member><EventId>%s</EventId><StackName>s</StackName><LogicalResourceId>%s</LogicalResourceId><ResourceType>%s</ResourceType>`+
				`<ResourceStatus>%s</ResourceStatus><ResourceStatusReason>%s</ResourceStatusReason><Timestamp>2026-01-01T00:00:00Z</Timestamp></member>`,
				e.id, e.logical, e.kind, e.status, e.reason)
		}
		fmt.Fprintf(w, `<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>%s</StackEvents></DescribeStackEventsResult></DescribeStackEventsResponse>`, b.String())
	default:
		http.Error(w, "unexpected action "+r.Form.Get("Action"), http.StatusBadRequest)
	}
}

func fakeClient(t *testing.T, f *fakeCFN) *cloudformation.Client {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return cloudformation.New(cloudformation.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
	})
}

const tableType, fnType, stackType = "AWS::DynamoDB::Table", "AWS::Lambda::Function", "AWS::CloudFormation::Stack"

func TestWaitStreamsEventsLiveUntilComplete(t *testing.T) {
	f := &fakeCFN{steps: []fakeStep{
		{status: "CREATE_IN_PROGRESS", events: []fakeEvent{{"1", "s", stackType, "CREATE_IN_PROGRESS", "User Initiated"}, {"2", "Table", tableType, "CREATE_IN_PROGRESS", ""}}},
		{status: "CREATE_IN_PROGRESS", events: []fakeEvent{{"3", "Table", tableType, "CREATE_COMPLETE", ""}, {"4", "Fn", fnType, "CREATE_IN_PROGRESS", ""}}},
		{status: "CREATE_COMPLETE", events: []fakeEvent{{"5", "Fn", fnType, "CREATE_COMPLETE", ""}, {"6", "s", stackType, "CREATE_COMPLETE", ""}}},
	}}
	var out bytes.Buffer
	w := newWatcher(fakeClient(t, f), "s", &out, time.Millisecond, 2)
	st, failure, err := w.wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "CREATE_COMPLETE", st)
	assert.Empty(t, failure)

	text := out.String()
	order := []string{Progress(0, 2), "User Initiated", "CREATE_IN_PROGRESS   AWS::DynamoDB::Table",
		"CREATE_COMPLETE      AWS::DynamoDB::Table", Progress(1, 2), "CREATE_COMPLETE      AWS::Lambda::Function", Progress(2, 2)}
	pos := 0
	for _, want := range order {
		i := strings.Index(text[pos:], want)
		require.GreaterOrEqual(t, i, 0, "%q after offset %d in:\n%s", want, pos, text)
		pos += i + len(want)
	}
	assert.Equal(t, 1, strings.Count(text, "User Initiated"), "each event is shown once")
	assert.Equal(t, 1, strings.Count(text, Progress(2, 2)), "the final bar is shown once")
}

func TestWaitReportsTheFirstFailure(t *testing.T) {
	f := &fakeCFN{steps: []fakeStep{
		{status: "CREATE_IN_PROGRESS", events: []fakeEvent{{"1", "Fn", fnType, "CREATE_FAILED", "The role defined for the function cannot be assumed by Lambda."}}},
		{status: "ROLLBACK_COMPLETE", reason: "The following resource(s) failed to create: [Fn].", events: []fakeEvent{{"2", "Table", tableType, "DELETE_COMPLETE", ""}}},
	}}
	var out bytes.Buffer
	st, failure, err := newWatcher(fakeClient(t, f), "s", &out, time.Millisecond, 2).wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "ROLLBACK_COMPLETE", st)
	assert.Equal(t, "Fn (CREATE_FAILED): The role defined for the function cannot be assumed by Lambda.", failure)
	assert.Contains(t, out.String(), "cannot be assumed")
}

func TestWaitGivesTheStackReasonWithoutAFailedResource(t *testing.T) {
	f := &fakeCFN{steps: []fakeStep{{status: "UPDATE_ROLLBACK_COMPLETE", reason: "cancelled by user"}}}
	_, failure, err := newWatcher(fakeClient(t, f), "s", nil, time.Millisecond, 2).wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "cancelled by user", failure)
}

func TestWaitEndsWhenTheStackIsGone(t *testing.T) {
	f := &fakeCFN{steps: []fakeStep{
		{status: "DELETE_IN_PROGRESS", events: []fakeEvent{{"1", "Table", tableType, "DELETE_IN_PROGRESS", ""}}},
		{status: "GONE"},
	}}
	var out bytes.Buffer
	st, _, err := newWatcher(fakeClient(t, f), "arn:s", &out, time.Millisecond, 1).wait(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "DELETE_COMPLETE", st)
	assert.Contains(t, out.String(), Progress(1, 1))
}

func TestWaitStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeCFN{
		steps:      []fakeStep{{status: "UPDATE_IN_PROGRESS"}, {status: "UPDATE_IN_PROGRESS"}},
		onDescribe: func(n int) { cancel() }, // the operation never ends; the user gives up
	}
	_, _, err := newWatcher(fakeClient(t, f), "s", nil, time.Hour, 1).wait(ctx)
	require.ErrorIs(t, err, context.Canceled, "an hour-long poll interval must not hold a cancelled wait")
}

func testDeployment(out *bytes.Buffer) deployment {
	return deployment{install: "t", stack: "s", out: out, poll: time.Millisecond, total: 2}
}

func TestDeployCreatesAMissingStack(t *testing.T) {
	f := &fakeCFN{tag: "t", scripts: map[string][]fakeStep{
		"CreateStack": {{status: "CREATE_IN_PROGRESS"}, {status: "CREATE_COMPLETE", events: []fakeEvent{{"1", "Table", tableType, "CREATE_COMPLETE", ""}}}},
	}}
	var out bytes.Buffer
	id, err := deploy(context.Background(), fakeClient(t, f), testDeployment(&out))
	require.NoError(t, err)
	assert.Equal(t, "arn:s", id)
	assert.Equal(t, []string{"CreateStack"}, f.calls)
	assert.Contains(t, out.String(), "creating stack s")
}

func TestDeployTreatsNoUpdatesAsSuccess(t *testing.T) {
	f := &fakeCFN{tag: "t", noUpdates: true, steps: []fakeStep{{status: "UPDATE_COMPLETE"}}}
	var out bytes.Buffer
	id, err := deploy(context.Background(), fakeClient(t, f), testDeployment(&out))
	require.NoError(t, err)
	assert.Equal(t, "arn:s", id)
	assert.Equal(t, []string{"UpdateStack"}, f.calls)
	assert.Contains(t, out.String(), "stack s is up to date")
}

func TestDeployWaitsForABusyStackThenUpdates(t *testing.T) {
	f := &fakeCFN{tag: "t",
		steps: []fakeStep{{status: "UPDATE_IN_PROGRESS"}, {status: "UPDATE_IN_PROGRESS"}, {status: "UPDATE_COMPLETE"}},
		scripts: map[string][]fakeStep{
			"UpdateStack": {{status: "UPDATE_IN_PROGRESS"}, {status: "UPDATE_COMPLETE"}},
		}}
	var out bytes.Buffer
	_, err := deploy(context.Background(), fakeClient(t, f), testDeployment(&out))
	require.NoError(t, err)
	assert.Equal(t, []string{"UpdateStack"}, f.calls)
	assert.Contains(t, out.String(), "stack s is busy (UPDATE_IN_PROGRESS); waiting for it")
	assert.Contains(t, out.String(), "updating stack s")
}

func TestDeployReplacesAStackWhoseCreationFailed(t *testing.T) {
	f := &fakeCFN{tag: "t",
		steps: []fakeStep{{status: "ROLLBACK_COMPLETE"}},
		scripts: map[string][]fakeStep{
			"DeleteStack": {{status: "DELETE_IN_PROGRESS"}, {status: "GONE"}},
			"CreateStack": {{status: "CREATE_COMPLETE"}},
		}}
	var out bytes.Buffer
	_, err := deploy(context.Background(), fakeClient(t, f), testDeployment(&out))
	require.NoError(t, err)
	assert.Equal(t, []string{"DeleteStack", "CreateStack"}, f.calls)
	assert.Contains(t, out.String(), "failed to create earlier (ROLLBACK_COMPLETE); deleting it first")
}

func TestDeployReportsAFailedCreate(t *testing.T) {
	f := &fakeCFN{tag: "t", scripts: map[string][]fakeStep{
		"CreateStack": {
			{status: "CREATE_IN_PROGRESS", events: []fakeEvent{{"1", "RelayFunction", fnType, "CREATE_FAILED", "Resource handler returned message: bad zip"}}},
			{status: "ROLLBACK_COMPLETE"},
		},
	}}
	_, err := deploy(context.Background(), fakeClient(t, f), testDeployment(&bytes.Buffer{}))
	require.Error(t, err)
	assert.Equal(t, "stack s ended in ROLLBACK_COMPLETE: RelayFunction (CREATE_FAILED): Resource handler returned message: bad zip", err.Error())
}
