package devside

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

// gateRunner answers each invocation with out once release is closed (or at once when release is nil), and
// notes the invocations it was given.
type gateRunner struct {
	out     executor.Outcome
	release chan struct{}
	mu      sync.Mutex
	got     []executor.Invocation
}

func (r *gateRunner) Invoke(ctx context.Context, inv executor.Invocation) (executor.Outcome, error) {
	r.mu.Lock()
	r.got = append(r.got, inv)
	r.mu.Unlock()
	if r.release != nil {
		select {
		case <-r.release:
		case <-ctx.Done():
			return executor.Outcome{}, ctx.Err()
		}
	}
	return r.out, nil
}

func (r *gateRunner) invocations() []executor.Invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]executor.Invocation(nil), r.got...)
}

type reports struct {
	mu  sync.Mutex
	got []MirrorReport
}

func (r *reports) add(m MirrorReport) {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
}

func (r *reports) all() []MirrorReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]MirrorReport(nil), r.got...)
}

type mirrorRig struct {
	t      *testing.T
	d      *dispatcher
	link   *fakeLink
	runner *gateRunner
	rep    *reports
	peer   string
	cancel context.CancelFunc
	done   chan error
}

func newMirrorRig(t *testing.T, runner *gateRunner, grace time.Duration) *mirrorRig {
	r := &mirrorRig{t: t, link: &fakeLink{in: make(chan *wire.Envelope, 16)}, runner: runner, rep: &reports{},
		peer: ticket.FunctionPeer("orders-fn", "sb-1"), done: make(chan error, 1)}
	r.d = newDispatcher(dispatchConfig{
		Link: r.link,
		Resolve: func(name string) (target, bool) {
			return target{Runner: runner, Timeout: 3 * time.Second}, name == "orders-fn"
		},
		OnMirror:    r.rep.add,
		MirrorGrace: grace,
		Logger:      slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.d.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *mirrorRig) stop() {
	if r.cancel != nil {
		r.cancel()
		require.NoError(r.t, <-r.done)
		r.cancel = nil
	}
}

func (r *mirrorRig) mirror(id string, deadline time.Time) {
	e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Function: wire.FunctionIdentity{Name: "orders-fn", LogicalID: "Orders"},
		Deadline: deadline, Event: []byte(`{"n":1}`), Mirror: true})
	require.NoError(r.t, err)
	e.From = r.peer
	r.link.in <- e
}

func (r *mirrorRig) deployed(from, id string, d wire.Deployed) {
	e, err := wire.NewEnvelope(wire.TypeDeployed, id, d)
	require.NoError(r.t, err)
	e.From = from
	r.link.in <- e
}

func (r *mirrorRig) pending() int {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	return len(r.d.mirrors)
}

var deployedOK = wire.Deployed{RequestID: "req-1", Payload: []byte(`{"statusCode": 200}`), ContentType: "application/json", DurationMs: 12}

// The usual order: the deployed code answers while the copy is still paused here. Nothing is sent back for the
// copy (no ack, answer or log line), and the report comes once the copy finishes, with both results.
func TestMirrorDeployedAnswerBeforeTheLocalOne(t *testing.T) {
	runner := &gateRunner{out: executor.Outcome{Payload: []byte(`{"statusCode": 500}`)}, release: make(chan struct{})}
	r := newMirrorRig(t, runner, time.Minute)
	r.mirror("req-1", time.Now().Add(3*time.Second))
	require.Eventually(t, func() bool { return len(runner.invocations()) == 1 }, 10*time.Second, time.Millisecond)
	r.deployed(r.peer, "req-1", deployedOK)
	r.d.Log(context.Background(), executor.LogLine{RequestID: "req-1", Stream: "stdout", Text: "in the copy\n", Time: time.Now()})
	require.Eventually(t, func() bool {
		r.d.mu.Lock()
		defer r.d.mu.Unlock()
		m := r.d.mirrors["req-1"]
		return m != nil && m.deployed != nil
	}, 10*time.Second, time.Millisecond, "the deployed answer waits for the copy")
	assert.Empty(t, r.rep.all(), "no report while the copy runs")
	close(runner.release)
	require.Eventually(t, func() bool { return len(r.rep.all()) == 1 }, 10*time.Second, time.Millisecond)
	got := r.rep.all()[0]
	assert.Equal(t, "req-1", got.RequestID)
	assert.Equal(t, "Orders", got.Function.LogicalID)
	assert.Equal(t, `{"statusCode": 500}`, string(got.Local.Payload))
	assert.NoError(t, got.LocalErr)
	require.NotNil(t, got.Deployed)
	assert.Equal(t, deployedOK, *got.Deployed)
	assert.Positive(t, got.LocalDuration)
	assert.Equal(t, 0, r.pending())
	inv := runner.invocations()[0]
	assert.Equal(t, `{"n":1}`, string(inv.Event))
	assert.False(t, inv.Deadline.IsZero(), "the handler still counts down its own timeout")
	r.stop()
	assert.Empty(t, r.link.sent(), "nothing goes back over the relay for a copy")
}

// The copy may finish first (no breakpoint, a slow deployed function): the report waits for the deployed
// answer. A deployed answer for a request nobody mirrored, or from another sandbox than the copy's, is ignored.
func TestMirrorLocalAnswerBeforeTheDeployedOne(t *testing.T) {
	runner := &gateRunner{out: executor.Outcome{Err: &executor.LambdaError{ErrorType: "ValueError", ErrorMessage: "boom"}}}
	r := newMirrorRig(t, runner, time.Minute)
	r.mirror("req-1", time.Now().Add(3*time.Second))
	require.Eventually(t, func() bool {
		r.d.mu.Lock()
		defer r.d.mu.Unlock()
		m := r.d.mirrors["req-1"]
		return m != nil && m.done
	}, 10*time.Second, time.Millisecond)
	r.deployed(r.peer, "req-unknown", wire.Deployed{RequestID: "req-unknown", Payload: []byte(`1`)})
	r.deployed(ticket.FunctionPeer("orders-fn", "sb-other"), "req-1", wire.Deployed{RequestID: "req-1", Payload: []byte(`"forged"`)})
	r.deployed(r.peer, "req-1", wire.Deployed{RequestID: "req-2", Payload: []byte(`"mislabelled"`)})
	r.deployed(r.peer, "req-1", deployedOK)
	require.Eventually(t, func() bool { return len(r.rep.all()) == 1 }, 10*time.Second, time.Millisecond)
	got := r.rep.all()[0]
	require.NotNil(t, got.Deployed)
	assert.Equal(t, deployedOK, *got.Deployed, "only the copy's own sandbox answers for it")
	require.NotNil(t, got.Local.Err)
	assert.Equal(t, "ValueError", got.Local.Err.ErrorType)
	assert.Equal(t, 0, r.pending())
	r.stop()
	assert.Len(t, r.rep.all(), 1)
	assert.Empty(t, r.link.sent())
}

// The deployed answer may never come (the sandbox died, the link dropped): the copy's outcome is reported alone
// once the bound has passed, and nothing is kept; a late answer is then ignored.
func TestMirrorDeployedAnswerThatNeverComes(t *testing.T) {
	runner := &gateRunner{out: executor.Outcome{Payload: []byte(`1`)}}
	r := newMirrorRig(t, runner, 50*time.Millisecond)
	r.mirror("req-1", time.Now())
	require.Eventually(t, func() bool { return len(r.rep.all()) == 1 }, 10*time.Second, time.Millisecond)
	got := r.rep.all()[0]
	assert.Nil(t, got.Deployed)
	assert.Equal(t, "1", string(got.Local.Payload))
	assert.Equal(t, 0, r.pending())
	r.deployed(r.peer, "req-1", deployedOK)
	r.stop()
	assert.Len(t, r.rep.all(), 1, "a late deployed answer is ignored")
	assert.Contains(t, FormatMirror(got), "deployed: no answer received")
}

// A copy still paused when the session ends is not reported, and its state goes with the dispatcher; a copy
// naming another function than its sender's is not run.
func TestMirrorStateEndsWithTheDispatcher(t *testing.T) {
	runner := &gateRunner{out: executor.Outcome{Payload: []byte(`1`)}, release: make(chan struct{})}
	r := newMirrorRig(t, runner, time.Minute)
	e, err := wire.NewEnvelope(wire.TypeInvoke, "req-x", wire.Invoke{RequestID: "req-x", Function: wire.FunctionIdentity{Name: "payments-fn"}, Mirror: true})
	require.NoError(t, err)
	e.From = r.peer
	r.link.in <- e
	r.mirror("req-1", time.Now().Add(time.Minute))
	r.deployed(r.peer, "req-1", deployedOK)
	require.Eventually(t, func() bool { return len(runner.invocations()) == 1 }, 10*time.Second, time.Millisecond)
	r.stop()
	assert.Equal(t, 0, r.pending())
	assert.Empty(t, r.rep.all())
	assert.Equal(t, "req-1", runner.invocations()[0].RequestID, "the copy naming another function did not run")
}

func TestFormatMirror(t *testing.T) {
	line := FormatMirror(MirrorReport{
		Function: wire.FunctionIdentity{LogicalID: "HelloFunction", Name: "hello-fn"}, RequestID: "1a2b3c4d",
		Deployed:      &wire.Deployed{RequestID: "1a2b3c4d", Payload: []byte(`{"statusCode": 200, "body": "` + strings.Repeat("x", 500) + `"}`), DurationMs: 12},
		Local:         executor.Outcome{Err: &executor.LambdaError{ErrorType: "ValueError", Document: []byte(`{"errorMessage": "boom\n\u001b[2J", "errorType": "ValueError"}`)}},
		LocalDuration: 3200 * time.Millisecond,
	})
	assert.True(t, strings.HasPrefix(line, `plldb: mirror HelloFunction 1a2b3c4d — deployed: {"statusCode": 200, "body": "xxx`), line)
	assert.Contains(t, line, `…`, "a long payload is clipped")
	assert.Contains(t, line, "(12 ms) · local: ValueError: boom  [2J (3.2 s)\n")
	assert.Less(t, len(line), 600)
	assert.Equal(t, 1, strings.Count(line, "\n"), "one line, whatever the payloads hold")

	line = FormatMirror(MirrorReport{Function: wire.FunctionIdentity{Name: "hello-fn"}, RequestID: "r",
		Deployed: &wire.Deployed{RequestID: "r", Error: true, ErrorType: "Runtime.ExitError", Payload: []byte(`{"errorMessage": "exited", "errorType": "Runtime.ExitError"}`)},
		Local:    executor.Outcome{Payload: []byte{0, 0xff}, ContentType: "application/unknown"}, LocalDuration: 90 * time.Second})
	assert.Equal(t, "plldb: mirror hello-fn r — deployed: Runtime.ExitError: exited (0 ms) · local: 2 bytes of application/unknown (1m30s)\n", line)

	line = FormatMirror(MirrorReport{Function: wire.FunctionIdentity{Name: "hello-fn"}, RequestID: "r", LocalErr: context.Canceled})
	assert.Contains(t, line, "deployed: no answer received · local: not run to the end: context canceled")
}
