package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// isolation reports what a handler saw of its sandbox: module state, environment, trace id and TMPDIR. Each
// invocation waits for a file the test writes, so that the invocations of one round all run at once.
const isolation = `import os, tempfile, time
count = 0
def handler(event, context):
    global count
    count += 1
    mine = count
    os.environ['SHARED'] = context.aws_request_id
    gate = event.get('gate')
    while gate and not os.path.exists(gate):
        time.sleep(0.005)
    with open(os.path.join(tempfile.gettempdir(), 'mine'), 'a') as f:
        f.write(context.aws_request_id + '\n')
    return {'pid': os.getpid(), 'count': mine, 'countNow': count, 'shared': os.environ['SHARED'],
            'trace': os.environ.get('_X_AMZN_TRACE_ID'), 'tmp': tempfile.gettempdir(),
            'tmpFiles': open(os.path.join(tempfile.gettempdir(), 'mine')).read().split(),
            'init': os.environ.get('AWS_LAMBDA_INITIALIZATION_TYPE')}
`

type seen struct {
	PID      int      `json:"pid"`
	Count    int      `json:"count"`
	CountNow int      `json:"countNow"`
	Shared   string   `json:"shared"`
	Trace    string   `json:"trace"`
	Tmp      string   `json:"tmp"`
	TmpFiles []string `json:"tmpFiles"`
	Init     string   `json:"init"`
}

func TestConcurrentInvocationsEachHaveASandbox(t *testing.T) {
	e, _ := start(t, Spec{MaxConcurrency: 4}, map[string]string{"app.py": isolation})
	gate := filepath.Join(t.TempDir(), "gate")
	round := func(n int, tag string) map[string]seen {
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[string]seen{}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rid := fmt.Sprintf("%s-%d", tag, i)
				out := invoke(t, e, Invocation{RequestID: rid, TraceID: "Root=1-" + rid, Event: fmt.Appendf(nil, `{"gate": %q}`, gate)})
				var s seen
				require.NoError(t, json.Unmarshal(out.Payload, &s), "%s", out.Payload)
				mu.Lock()
				got[rid] = s
				mu.Unlock()
			}()
		}
		require.Eventually(t, func() bool { return len(e.Sandboxes()) == n }, 30*time.Second, 5*time.Millisecond)
		time.Sleep(50 * time.Millisecond) // every invocation is in its handler, past its writes
		require.NoError(t, os.WriteFile(gate, nil, 0o600))
		wg.Wait()
		require.NoError(t, os.Remove(gate))
		return got
	}

	first := round(4, "a")
	pids, tmps := map[int]bool{}, map[string]bool{}
	for rid, s := range first {
		assert.Equal(t, 1, s.Count, "%s: a sandbox's module state is its own", rid)
		assert.Equal(t, 1, s.CountNow, "%s: no concurrent invocation changed this sandbox's module state", rid)
		assert.Equal(t, rid, s.Shared, "%s: os.environ is the sandbox's own", rid)
		assert.Equal(t, "Root=1-"+rid, s.Trace, "%s: the trace id is this invocation's", rid)
		assert.Equal(t, []string{rid}, s.TmpFiles, "%s: TMPDIR is the sandbox's own", rid)
		assert.Equal(t, "on-demand", s.Init)
		pids[s.PID], tmps[s.Tmp] = true, true
	}
	assert.Len(t, pids, 4, "four concurrent invocations, four processes")
	assert.Len(t, tmps, 4, "four sandboxes, four TMPDIRs")

	// Warm: the same sandboxes take the next round, with their module state and /tmp carried over.
	second := round(4, "b")
	for rid, s := range second {
		assert.True(t, pids[s.PID], "%s ran in a new sandbox although four were warm", rid)
		assert.Equal(t, 2, s.Count, "%s: module state carries over in a warm sandbox", rid)
		assert.Len(t, s.TmpFiles, 2, "%s: /tmp carries over in a warm sandbox", rid)
	}
	assert.Len(t, e.Sandboxes(), 4)
}

func TestMaxConcurrencyBoundsTheSandboxes(t *testing.T) {
	e, _ := start(t, Spec{MaxConcurrency: 2}, map[string]string{"app.py": isolation})
	gate := filepath.Join(t.TempDir(), "gate")
	var wg sync.WaitGroup
	pids := make(chan int, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := invoke(t, e, Invocation{RequestID: fmt.Sprint("r", i), Event: fmt.Appendf(nil, `{"gate": %q}`, gate)})
			var s seen
			require.NoError(t, json.Unmarshal(out.Payload, &s))
			pids <- s.PID
		}()
	}
	require.Eventually(t, func() bool { return len(e.Sandboxes()) == 2 }, 30*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, e.Sandboxes(), 2, "the pool never grows past MaxConcurrency; the other invocations wait")
	require.NoError(t, os.WriteFile(gate, nil, 0o600))
	wg.Wait()
	close(pids)
	distinct := map[int]bool{}
	for pid := range pids {
		distinct[pid] = true
	}
	assert.Len(t, distinct, 2)
}

func TestTimeoutLeavesOtherSandboxesAlone(t *testing.T) {
	e, _ := start(t, Spec{TimeoutSec: 1, EnforceTimeout: true}, map[string]string{"app.py": `import os, time
def handler(event, context):
    time.sleep(event['sleep'])
    return {'pid': os.getpid()}
`})
	var wg sync.WaitGroup
	var slow, fast Outcome
	wg.Add(2)
	go func() {
		defer wg.Done()
		slow = invoke(t, e, Invocation{RequestID: "slow", Event: []byte(`{"sleep": 30}`)})
	}()
	go func() {
		defer wg.Done()
		fast = invoke(t, e, Invocation{RequestID: "fast", Event: []byte(`{"sleep": 0.5}`)})
	}()
	wg.Wait()
	require.NotNil(t, slow.Err)
	assert.Equal(t, "Sandbox.Timedout", slow.Err.ErrorType)
	require.Nil(t, fast.Err, "a sibling's timeout must not touch this invocation: %+v", fast.Err)
	var f seen
	require.NoError(t, json.Unmarshal(fast.Payload, &f))
	// The fast one's sandbox is still the same process, warm.
	again := invoke(t, e, Invocation{Event: []byte(`{"sleep": 0}`)})
	var a seen
	require.NoError(t, json.Unmarshal(again.Payload, &a))
	assert.Equal(t, f.PID, a.PID, "the warm sandbox that did not time out serves the next invocation")
}

func TestIdleSandboxesAreReapedDownToOne(t *testing.T) {
	var exits atomic.Int32
	e, _ := start(t, Spec{IdleTimeout: 300 * time.Millisecond, OnExit: func(SandboxInfo) { exits.Add(1) }}, map[string]string{"app.py": isolation})
	gate := filepath.Join(t.TempDir(), "gate")
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			invoke(t, e, Invocation{RequestID: fmt.Sprint("r", i), Event: fmt.Appendf(nil, `{"gate": %q}`, gate)})
		}()
	}
	require.Eventually(t, func() bool { return len(e.Sandboxes()) == 3 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, os.WriteFile(gate, nil, 0o600))
	wg.Wait()
	require.Eventually(t, func() bool { return len(e.Sandboxes()) == 1 }, 30*time.Second, 20*time.Millisecond, "idle sandboxes are stopped, one stays warm")
	require.Eventually(t, func() bool { return exits.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	assert.Len(t, e.Sandboxes(), 1, "the last warm sandbox is kept")
	assert.Equal(t, map[string]any{"pid": float64(e.PID())}, map[string]any{"pid": payload(t, invoke(t, e, Invocation{}))["pid"]})
}

func TestInitDurationOnlyOnAColdStart(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": "def handler(event, context):\n    return 1\n"})
	cold := invoke(t, e, Invocation{})
	assert.Positive(t, cold.InitDuration, "the first invocation of a sandbox reports its start")
	warm := invoke(t, e, Invocation{})
	assert.Zero(t, warm.InitDuration, "a warm invocation has no Init Duration")
}

func TestOnStartRunsBeforeTheFirstInvocation(t *testing.T) {
	var mu sync.Mutex
	var events []string
	var e *Executor
	e, _ = start(t, Spec{OnStart: func(_ context.Context, sb SandboxInfo) {
		time.Sleep(100 * time.Millisecond) // a debugger attaching
		mu.Lock()
		events = append(events, fmt.Sprintf("start %d", sb.ID))
		mu.Unlock()
	}}, map[string]string{"app.py": isolation})
	gate := filepath.Join(t.TempDir(), "gate")
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := invoke(t, e, Invocation{RequestID: fmt.Sprint("r", i), Event: fmt.Appendf(nil, `{"gate": %q}`, gate)})
			mu.Lock()
			events = append(events, "ran "+string(out.Payload[:10]))
			mu.Unlock()
		}()
	}
	require.Eventually(t, func() bool { return len(e.Sandboxes()) == 2 }, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, os.WriteFile(gate, nil, 0o600))
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 4)
	assert.Equal(t, []string{"start 1", "start 2"}, events[:2], "each sandbox is announced before it runs anything")
}

// TestRandomKillsFailOnlyTheirOwnInvocations runs 1,000 invocations from 8 callers while sandboxes are killed at
// random: every call gets exactly one answer, and the only failures are invocations whose sandbox was killed.
func TestRandomKillsFailOnlyTheirOwnInvocations(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 invocations")
	}
	e, sink := start(t, Spec{MaxConcurrency: 8}, map[string]string{"app.py": `import os, random, time
def handler(event, context):
    print('pid', os.getpid())
    time.sleep(random.random() * 0.004)
    return {'pid': os.getpid()}
`})
	const total, callers = 1000, 8
	var next atomic.Int32
	var answers, failures atomic.Int32
	stop := make(chan struct{})
	var killed sync.Map
	var killer sync.WaitGroup
	killer.Add(1)
	go func() {
		defer killer.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(20+rand.IntN(30)) * time.Millisecond):
			}
			if sbs := e.Sandboxes(); len(sbs) > 0 {
				sb := sbs[rand.IntN(len(sbs))]
				killed.Store(sb.PID, true)
				_ = syscall.Kill(sb.PID, syscall.SIGKILL)
			}
		}
	}()
	pidLine := regexp.MustCompile(`(?m)^pid (\d+)$`)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				rid := fmt.Sprint("kill-", i)
				out := invoke(t, e, Invocation{RequestID: rid})
				answers.Add(1)
				if out.Err == nil {
					continue
				}
				failures.Add(1)
				assert.Equal(t, "Runtime.ExitError", out.Err.ErrorType, "%s: %+v", rid, out.Err)
				assert.Contains(t, out.Err.ErrorMessage, "signal: killed", "%s failed, but not because its sandbox was killed", rid)
				if m := pidLine.FindStringSubmatch(sink.text(rid, "stdout")); m != nil {
					var pid int
					fmt.Sscan(m[1], &pid)
					_, ok := killed.Load(pid)
					assert.True(t, ok, "%s failed in sandbox %d, which was not killed", rid, pid)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	killer.Wait()
	assert.EqualValues(t, total, answers.Load(), "every invocation is answered exactly once")
	t.Logf("%d of %d invocations were in a killed sandbox", failures.Load(), total)
	assert.Positive(t, failures.Load(), "the killer hit no busy sandbox; the test proved nothing")
	assert.Equal(t, map[string]any{"pid": payload(t, invoke(t, e, Invocation{}))["pid"]}, map[string]any{"pid": payload(t, invoke(t, e, Invocation{}))["pid"]}, "the pool serves on, warm")
}

// TestEditReachesEverySandbox: an edit of the handler's code reaches the next invocation in every warm sandbox,
// each reloading what it loaded, with none restarted.
func TestEditReachesEverySandbox(t *testing.T) {
	e, _ := start(t, Spec{MaxConcurrency: 2}, map[string]string{"app.py": `import os, time
V = 1
def handler(event, context):
    while event.get('gate') and not os.path.exists(event['gate']):
        time.sleep(0.005)
    return {'pid': os.getpid(), 'v': V}
`})
	round := func(gate string) map[int]float64 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := map[int]float64{}
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := payload(t, invoke(t, e, Invocation{RequestID: fmt.Sprint(gate, i), Event: fmt.Appendf(nil, `{"gate": %q}`, gate)}))
				mu.Lock()
				got[int(m["pid"].(float64))] = m["v"].(float64)
				mu.Unlock()
			}()
		}
		require.Eventually(t, func() bool { return len(e.Sandboxes()) == 2 }, 30*time.Second, 5*time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, os.WriteFile(gate, nil, 0o600))
		wg.Wait()
		return got
	}
	dir := t.TempDir()
	before := round(filepath.Join(dir, "one"))
	require.Len(t, before, 2)
	writeFiles(t, e.spec.CodeDir, map[string]string{"app.py": `import os, time
V = 2
def handler(event, context):
    while event.get('gate') and not os.path.exists(event['gate']):
        time.sleep(0.005)
    return {'pid': os.getpid(), 'v': V}
`})
	after := round(filepath.Join(dir, "two"))
	require.Len(t, after, 2)
	for pid, v := range after {
		assert.Equal(t, 2.0, v, "sandbox %d runs the edited code", pid)
		_, same := before[pid]
		assert.True(t, same, "sandbox %d is new: a warm sandbox was restarted for an edit", pid)
	}
}

// TestHandlerRunsOnTheMainThread: as awslambdaric does, the handler runs on its sandbox's main thread, where
// signal handlers (a handler's own timeout alarm, say) work.
func TestHandlerRunsOnTheMainThread(t *testing.T) {
	e, _ := start(t, Spec{}, map[string]string{"app.py": `import signal, threading, time
class Alarm(Exception):
    pass
def on_alarm(signum, frame):
    raise Alarm()
def handler(event, context):
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        time.sleep(5)
        fired = False
    except Alarm:
        fired = True
    return {'main': threading.current_thread() is threading.main_thread(), 'alarm': fired}
`})
	for range 2 {
		assert.Equal(t, map[string]any{"main": true, "alarm": true}, payload(t, invoke(t, e, Invocation{})))
	}
}
