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
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
	"github.com/plldb/plldb/testfixtures/logbuf"
)

// fakeLink is the relay as the dispatcher sees it: envelopes in (already stamped with from), envelopes out.
type fakeLink struct {
	in  chan *wire.Envelope
	mu  sync.Mutex
	out []*wire.Envelope
}

func (l *fakeLink) Send(_ context.Context, e *wire.Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out = append(l.out, e)
	return nil
}

func (l *fakeLink) Recv() <-chan *wire.Envelope { return l.in }

func (l *fakeLink) sent() []*wire.Envelope {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*wire.Envelope(nil), l.out...)
}

// countingRunner records the invocations it runs; with hold set, each waits for it to close.
type countingRunner struct {
	mu   sync.Mutex
	ids  []string
	hold chan struct{}
}

func (r *countingRunner) Invoke(_ context.Context, inv executor.Invocation) (executor.Outcome, error) {
	r.mu.Lock()
	r.ids = append(r.ids, inv.RequestID)
	r.mu.Unlock()
	if r.hold != nil {
		<-r.hold
	}
	return executor.Outcome{Payload: []byte(`1`)}, nil
}

func (r *countingRunner) ran() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// An invocation is run only as the function its sender's ticket proved (the relay-stamped from): one that names
// another function, or comes from a peer outside every function's namespace, is never acknowledged or run
// (including chunked ones, which the relay cannot read), and a lying logical id does not pick another function.
func TestDispatchRunsInvocationsOnlyAsTheSendersFunction(t *testing.T) {
	orders, payments := &countingRunner{}, &countingRunner{}
	link := &fakeLink{in: make(chan *wire.Envelope, 8)}
	d := newDispatcher(dispatchConfig{
		Link: link,
		Resolve: func(name string) (target, bool) {
			switch name {
			case "orders-fn":
				return target{Runner: orders}, true
			case "payments-fn":
				return target{Runner: payments}, true
			}
			return target{}, false
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	send := func(from, id string, fn wire.FunctionIdentity) {
		e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Function: fn})
		require.NoError(t, err)
		e.From = from
		link.in <- e
	}
	ordersPeer := ticket.FunctionPeer("orders-fn", "fn-1")
	send(ordersPeer, "as-payments", wire.FunctionIdentity{Name: "payments-fn", LogicalID: "Payments"})
	send("developer-1", "no-namespace", wire.FunctionIdentity{Name: "payments-fn"})
	send(ordersPeer, "lying-logical-id", wire.FunctionIdentity{Name: "orders-fn", LogicalID: "Payments"})
	send(ordersPeer, "own", wire.FunctionIdentity{Name: "orders-fn", LogicalID: "Orders"})

	require.Eventually(t, func() bool { return len(orders.ran()) == 2 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.ElementsMatch(t, []string{"lying-logical-id", "own"}, orders.ran())
	assert.Empty(t, payments.ran(), "nothing ran as another function")
	for _, e := range link.sent() {
		assert.Equal(t, ordersPeer, e.To)
		assert.NotContains(t, []string{"as-payments", "no-namespace"}, e.ID, "refused invocations are not acknowledged")
	}
}

// A knocked invocation runs only when its knock names this developer's own session. The relay refuses inline
// invokes that name another session, but passes chunked ones unread (here, as the dispatcher gets them:
// reassembled), so a proxy bug or a tampered sandbox could otherwise show one developer another's knocked traffic.
// A refused one is not acknowledged: its sandbox falls back to the deployed code. Mirrored copies pass the same
// check (they are never acknowledged either way).
func TestDispatchRunsKnockedInvocationsOnlyOfItsOwnSession(t *testing.T) {
	for _, c := range []struct {
		name    string
		session string
		want    []string
	}{
		{"own session", "s-alice", []string{"unknocked", "alice", "alice-mirror"}},
		{"no session configured", "", []string{"unknocked"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			orders := &countingRunner{}
			link := &fakeLink{in: make(chan *wire.Envelope, 8)}
			d := newDispatcher(dispatchConfig{
				Link:    link,
				Session: c.session,
				Resolve: func(name string) (target, bool) { return target{Runner: orders}, name == "orders-fn" },
				Logger:  slog.New(slog.DiscardHandler),
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			peer := ticket.FunctionPeer("orders-fn", "fn-1")
			// The big event makes each envelope one the relay carries in chunks; the dispatcher sees it whole.
			event := []byte(`{"pad":"` + strings.Repeat("x", 3*wire.MaxMessageBytes) + `"}`)
			send := func(id string, k *wire.KnockRef, mirror bool) {
				e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Function: wire.FunctionIdentity{Name: "orders-fn"},
					Event: event, Knock: k, Mirror: mirror})
				require.NoError(t, err)
				msgs, err := wire.Split(e)
				require.NoError(t, err)
				h, err := wire.PeekHeader(msgs[0])
				require.NoError(t, err)
				require.Equal(t, wire.TypeChunk, h.T, "chunked on the wire: the relay reads no knock in it")
				e.From = peer
				link.in <- e
			}
			send("bob", &wire.KnockRef{Session: "s-bob", ID: "k1"}, false)
			send("bob-mirror", &wire.KnockRef{Session: "s-bob", ID: "k5"}, true)
			send("empty-session", &wire.KnockRef{ID: "k2"}, false)
			send("alice", &wire.KnockRef{Session: "s-alice", ID: "k3"}, false)
			send("alice-mirror", &wire.KnockRef{Session: "s-alice", ID: "k4"}, true)
			send("unknocked", nil, false)

			require.Eventually(t, func() bool { return len(orders.ran()) == len(c.want) }, 10*time.Second, 10*time.Millisecond)
			cancel()
			require.NoError(t, <-done)
			assert.ElementsMatch(t, c.want, orders.ran())
			for _, e := range link.sent() {
				assert.Contains(t, c.want, e.ID, "refused invocations are not acknowledged nor answered")
			}
		})
	}
}

// Another function cannot reuse the request id of an invocation in flight to divert its log lines.
func TestDispatchRefusesAnotherFunctionsRequestIDInFlight(t *testing.T) {
	orders, payments := &countingRunner{hold: make(chan struct{})}, &countingRunner{}
	link := &fakeLink{in: make(chan *wire.Envelope, 8)}
	logs := &logbuf.Buffer{}
	d := newDispatcher(dispatchConfig{
		Link: link,
		Resolve: func(name string) (target, bool) {
			if name == "orders-fn" {
				return target{Runner: orders}, true
			}
			return target{Runner: payments}, name == "payments-fn"
		},
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	ordersPeer, paymentsPeer := ticket.FunctionPeer("orders-fn", "fn-1"), ticket.FunctionPeer("payments-fn", "fn-2")
	send := func(from, id, fn string) {
		e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Function: wire.FunctionIdentity{Name: fn}})
		require.NoError(t, err)
		e.From = from
		link.in <- e
	}
	send(ordersPeer, "req-1", "orders-fn")
	require.Eventually(t, func() bool { return len(orders.ran()) == 1 }, 10*time.Second, 10*time.Millisecond)
	send(paymentsPeer, "req-1", "payments-fn")
	send(paymentsPeer, "req-2", "payments-fn")
	require.Eventually(t, func() bool { return len(payments.ran()) == 1 }, 10*time.Second, 10*time.Millisecond)
	// Each invocation is handled on its own goroutine: wait for the refusal itself, so that orders' req-1 is not
	// released (and its id freed) before payments' req-1 has been looked at.
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "in flight for another function") }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"req-2"}, payments.ran(), "the id in flight for orders was refused")
	d.Log(ctx, executor.LogLine{RequestID: "req-1", Stream: "stdout", Text: "orders' secret\n", Time: time.Now()})
	close(orders.hold)
	cancel()
	require.NoError(t, <-done)
	for _, e := range link.sent() {
		if e.T == wire.TypeLog {
			assert.Equal(t, ordersPeer, e.To, "orders' log lines stay with orders")
		}
		if e.ID == "req-1" {
			assert.Equal(t, ordersPeer, e.To)
		}
	}
}

// An ack or answer that the relay could not deliver because the sandbox was between two connections is sent
// again until the sandbox is back (its peer id survives the reconnect), and only until the invocation's
// deadline; a nack for another reason is not retried. Found by BenchmarkSoak in adapter/local: the gateway
// closed a sandbox's connection, the answer left before the sandbox reconnected, and the caller got
// Plldb.Timeout at the deadline though the handler had run.
func TestDispatchRedeliversWhatTheRelayCouldNotDeliver(t *testing.T) {
	runner := &countingRunner{}
	link := &fakeLink{in: make(chan *wire.Envelope, 8)}
	d := newDispatcher(dispatchConfig{
		Link:    link,
		Resolve: func(name string) (target, bool) { return target{Runner: runner}, name == "orders-fn" },
		Logger:  slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	peer := ticket.FunctionPeer("orders-fn", "fn-1")
	invoke := func(id string, deadline time.Time) {
		e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Deadline: deadline, Function: wire.FunctionIdentity{Name: "orders-fn"}})
		require.NoError(t, err)
		e.From = peer
		link.in <- e
	}
	nack := func(ref string, typ wire.Type, reason string) {
		e, err := wire.NewEnvelope(wire.TypeNack, "", wire.Nack{Ref: ref, T: typ, Reason: reason})
		require.NoError(t, err)
		link.in <- e
	}
	count := func(id string, typ wire.Type) int {
		n := 0
		for _, e := range link.sent() {
			if e.ID == id && e.T == typ {
				assert.Equal(t, peer, e.To)
				n++
			}
		}
		return n
	}

	invoke("req-1", time.Now().Add(time.Minute))
	require.Eventually(t, func() bool { return count("req-1", wire.TypeResult) == 1 }, 10*time.Second, time.Millisecond)
	nack("req-1", wire.TypeResult, relay.ReasonNotConnected)
	require.Eventually(t, func() bool { return count("req-1", wire.TypeResult) == 2 }, 10*time.Second, time.Millisecond, "the answer is sent again")
	nack("req-1", wire.TypeAck, relay.ReasonGone)
	require.Eventually(t, func() bool { return count("req-1", wire.TypeAck) == 2 }, 10*time.Second, time.Millisecond, "so is the ack")
	nack("req-1", wire.TypeResult, relay.ReasonNotConnected)
	require.Eventually(t, func() bool { return count("req-1", wire.TypeResult) == 3 }, 10*time.Second, time.Millisecond, "again, after a longer wait")

	// Past the invocation's deadline, or refused for good: not sent again.
	invoke("req-2", time.Now().Add(300*time.Millisecond))
	invoke("req-3", time.Now().Add(time.Minute))
	require.Eventually(t, func() bool { return count("req-2", wire.TypeResult) == 1 && count("req-3", wire.TypeResult) == 1 },
		10*time.Second, time.Millisecond)
	time.Sleep(400 * time.Millisecond) // req-2's deadline passes
	nack("req-2", wire.TypeResult, relay.ReasonNotConnected)
	nack("req-3", wire.TypeResult, relay.ReasonInvalid)
	nack("unknown", wire.TypeResult, relay.ReasonNotConnected)
	time.Sleep(redeliverMax)
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, 1, count("req-2", wire.TypeResult))
	assert.Equal(t, 1, count("req-3", wire.TypeResult))
	assert.Equal(t, 0, count("unknown", wire.TypeResult))
	assert.ElementsMatch(t, []string{"req-1", "req-2", "req-3"}, runner.ran(), "nothing ran twice")
}

// After the developer's link reconnects, the acks and answers of the last moments are sent again on the new
// connection (a connection that died silently took them without delivering them, and nothing nacks that), but
// not those of invocations past their deadline.
func TestDispatchSendsRecentAnswersAgainAfterAReconnect(t *testing.T) {
	runner := &countingRunner{}
	link := &fakeLink{in: make(chan *wire.Envelope, 8)}
	d := newDispatcher(dispatchConfig{
		Link:    link,
		Resolve: func(name string) (target, bool) { return target{Runner: runner}, name == "orders-fn" },
		Logger:  slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	peer := ticket.FunctionPeer("orders-fn", "fn-1")
	for id, deadline := range map[string]time.Time{"live": time.Now().Add(time.Minute), "late": time.Now().Add(200 * time.Millisecond)} {
		e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Deadline: deadline, Function: wire.FunctionIdentity{Name: "orders-fn"}})
		require.NoError(t, err)
		e.From = peer
		link.in <- e
	}
	count := func(id string, typ wire.Type) int {
		n := 0
		for _, e := range link.sent() {
			if e.ID == id && e.T == typ {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return count("live", wire.TypeResult) == 1 && count("late", wire.TypeResult) == 1 },
		10*time.Second, time.Millisecond)
	time.Sleep(300 * time.Millisecond) // "late" is past its deadline
	d.Reconnected(ctx)
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, 2, count("live", wire.TypeResult))
	assert.Equal(t, 2, count("live", wire.TypeAck))
	assert.Equal(t, 1, count("late", wire.TypeResult))
	assert.ElementsMatch(t, []string{"live", "late"}, runner.ran(), "nothing ran twice")
}

// stalledLink is a developer link that is down: Send waits for a reconnect that does not come within ctx.
type stalledLink struct{ fakeLink }

func (l *stalledLink) Send(ctx context.Context, e *wire.Envelope) error {
	<-ctx.Done()
	return ctx.Err()
}

// An invocation whose ack cannot leave within ackBudget is not run: the sandbox stops waiting for the ack at its
// ack timeout and falls back to the function's own runtime, so running it as well would run it twice (found by
// the soak in adapter/local: the ack waited for the developer's reconnect, then the handler ran).
func TestDispatchDoesNotRunWhatItCouldNotAcknowledgeInTime(t *testing.T) {
	runner := &countingRunner{}
	link := &stalledLink{fakeLink{in: make(chan *wire.Envelope, 8)}}
	d := newDispatcher(dispatchConfig{
		Link:    link,
		Resolve: func(name string) (target, bool) { return target{Runner: runner}, name == "orders-fn" },
		Logger:  slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for id, ackTimeout := range map[string]int64{"req-1": 0, "req-2": 600} { // the default budget (2 s); 400 ms
		e, err := wire.NewEnvelope(wire.TypeInvoke, id, wire.Invoke{RequestID: id, Deadline: time.Now().Add(time.Minute), AckTimeoutMs: ackTimeout, Function: wire.FunctionIdentity{Name: "orders-fn"}})
		require.NoError(t, err)
		e.From = ticket.FunctionPeer("orders-fn", "fn-1")
		link.in <- e
	}
	time.Sleep(500 * time.Millisecond)
	d.mu.Lock()
	_, req1 := d.sent[sentKey{"req-1", wire.TypeAck}]
	_, req2 := d.sent[sentKey{"req-2", wire.TypeAck}]
	d.mu.Unlock()
	assert.True(t, req1, "req-1 is still within the default budget")
	assert.False(t, req2, "req-2's budget, two thirds of its sandbox's ack timeout, is spent")
	time.Sleep(ackBudget)
	d.Reconnected(ctx) // the link is back: the ack is not sent late either
	cancel()
	require.NoError(t, <-done)
	assert.Empty(t, runner.ran())
	d.mu.Lock()
	assert.Empty(t, d.sent, "nothing left to send again")
	d.mu.Unlock()
}

// outcomeRunner answers every invocation with out and records what it was asked.
type outcomeRunner struct {
	out executor.Outcome
	mu  sync.Mutex
	got []executor.Invocation
}

func (r *outcomeRunner) Invoke(_ context.Context, inv executor.Invocation) (executor.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, inv)
	return r.out, nil
}

// The tenant reaches the runner; the runtime's error document and a result's content type reach the sandbox
// as the runner gave them.
func TestDispatchCarriesTenantDocumentAndContentType(t *testing.T) {
	doc := []byte(`{"errorMessage": "boom", "errorType": "ValueError", "requestId": "", "stackTrace": []}`)
	for _, tc := range []struct {
		name  string
		out   executor.Outcome
		check func(t *testing.T, e *wire.Envelope)
	}{
		{"error", executor.Outcome{Err: &executor.LambdaError{ErrorMessage: "boom", ErrorType: "ValueError", Document: doc}},
			func(t *testing.T, e *wire.Envelope) {
				require.Equal(t, wire.TypeError, e.T)
				var we wire.Error
				require.NoError(t, e.DecodeBody(&we))
				assert.Equal(t, string(doc), string(we.Document))
				assert.Equal(t, "ValueError", we.ErrorType)
			}},
		{"bytes", executor.Outcome{Payload: []byte{0, 0xff}, ContentType: "application/unknown"},
			func(t *testing.T, e *wire.Envelope) {
				require.Equal(t, wire.TypeResult, e.T)
				var r wire.Result
				require.NoError(t, e.DecodeBody(&r))
				assert.Equal(t, []byte{0, 0xff}, r.Payload)
				assert.Equal(t, "application/unknown", r.ContentType)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runner := &outcomeRunner{out: tc.out}
			link := &fakeLink{in: make(chan *wire.Envelope, 1)}
			d := newDispatcher(dispatchConfig{
				Link:    link,
				Resolve: func(string) (target, bool) { return target{Runner: runner}, true },
				Logger:  slog.New(slog.DiscardHandler),
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			e, err := wire.NewEnvelope(wire.TypeInvoke, "r-1", wire.Invoke{RequestID: "r-1", Function: wire.FunctionIdentity{Name: "fn"}, TenantID: "tenant-1"})
			require.NoError(t, err)
			e.From = ticket.FunctionPeer("fn", "fn-1")
			link.in <- e
			var answer *wire.Envelope
			require.Eventually(t, func() bool {
				for _, s := range link.sent() {
					if s.T != wire.TypeAck {
						answer = s
						return true
					}
				}
				return false
			}, 10*time.Second, 10*time.Millisecond)
			cancel()
			require.NoError(t, <-done)
			tc.check(t, answer)
			runner.mu.Lock()
			defer runner.mu.Unlock()
			require.Len(t, runner.got, 1)
			assert.Equal(t, "tenant-1", runner.got[0].TenantID)
		})
	}
}

func TestClipUTF8(t *testing.T) {
	assert.Equal(t, "ab", clipUTF8("abü", 3), "no half character")
	assert.Equal(t, "abü", clipUTF8("abü", 4))
}

// An error document of any size makes an envelope the relay can carry: past Lambda's response limit it is
// Lambda's Function.ResponseSizeTooLarge, and beside a large one the fields only older proxies read are shortened.
func TestAnswerKeepsLargeErrorDocumentsWithinTheEnvelopeLimit(t *testing.T) {
	doc := func(n int) []byte {
		return []byte(`{"errorMessage": "` + strings.Repeat("x", n) + `", "errorType": "E", "requestId": "r", "stackTrace": []}`)
	}
	for _, tc := range []struct {
		name     string
		size     int
		wantType string
	}{{"2 MB", 2 << 20, "E"}, {"over the response limit", 8 << 20, runtimeapi.ErrorTypeResponseSizeTooLarge}} {
		t.Run(tc.name, func(t *testing.T) {
			d := doc(tc.size)
			env, err := answer("r", executor.Outcome{Err: &executor.LambdaError{
				ErrorMessage: strings.Repeat("x", tc.size), ErrorType: "E", StackTrace: []string{"  File x"}, Document: d,
			}}, nil)
			require.NoError(t, err)
			msg, err := wire.Marshal(env)
			require.NoError(t, err)
			assert.LessOrEqual(t, len(msg), wire.MaxEnvelopeBytes)
			got, err := wire.Unmarshal(msg)
			require.NoError(t, err)
			var we wire.Error
			require.NoError(t, got.DecodeBody(&we))
			require.NoError(t, we.CheckDocument())
			assert.Equal(t, tc.wantType, we.ErrorType)
			if tc.wantType == "E" {
				assert.Equal(t, d, we.Document, "the document itself is never shortened")
				assert.Len(t, we.ErrorMessage, 4096)
				assert.Nil(t, we.StackTrace)
			} else {
				assert.Contains(t, string(we.Document), "exceeded maximum allowed payload size")
			}
		})
	}
}

// A record the executor marked as awslambdaric's telemetry frame reaches the sandbox with its frame type, its
// message, the unfinished stdout line before it and its own time, for the layer proxy to frame it.
func TestDispatchCarriesLogFrames(t *testing.T) {
	runner := &countingRunner{hold: make(chan struct{})}
	link := &fakeLink{in: make(chan *wire.Envelope, 8)}
	d := newDispatcher(dispatchConfig{
		Link:    link,
		Resolve: func(name string) (target, bool) { return target{Runner: runner}, name == "orders-fn" },
		Logger:  slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	peer := ticket.FunctionPeer("orders-fn", "fn-1")
	e, err := wire.NewEnvelope(wire.TypeInvoke, "req-1", wire.Invoke{RequestID: "req-1", Function: wire.FunctionIdentity{Name: "orders-fn"}})
	require.NoError(t, err)
	e.From = peer
	link.in <- e
	require.Eventually(t, func() bool { return len(runner.ran()) == 1 }, 10*time.Second, 10*time.Millisecond)
	at := time.UnixMicro(1_767_000_000_123_456).UTC()
	record := "[INFO]\t2026-01-02T03:04:05.678Z\treq-1\tone\ntwo\n"
	d.Log(ctx, executor.LogLine{RequestID: "req-1", Stream: "stdout", Text: "half " + record, Time: at,
		Frame: 0xA55A000F, Record: record, Lead: len("half ")})
	d.Log(ctx, executor.LogLine{RequestID: "req-1", Stream: "stdout", Text: "plain\n", Time: at})
	d.Log(ctx, executor.LogLine{RequestID: "req-1", Stream: "stdout", Text: "[ERROR] E: x\rTraceback\n", Time: at,
		Frame: 0xA55A0017, Record: "[ERROR] E: x\nTraceback"})
	close(runner.hold)
	cancel()
	require.NoError(t, <-done)
	var logs []wire.Log
	var raw []string
	for _, e := range link.sent() {
		if e.T == wire.TypeLog {
			var l wire.Log
			require.NoError(t, e.DecodeBody(&l))
			require.NoError(t, l.CheckFrame())
			logs = append(logs, l)
			raw = append(raw, string(e.Body))
		}
	}
	require.Len(t, logs, 3)
	assert.Equal(t, wire.Log{RequestID: "req-1", Time: at, Stream: "stdout", Text: "half " + record,
		Frame: 0xA55A000F, Lead: 5}, logs[0], "a record that is its text is not sent twice")
	assert.Equal(t, record, logs[0].FrameMessage())
	assert.Equal(t, wire.Log{RequestID: "req-1", Time: at, Stream: "stdout", Text: "plain\n"}, logs[1])
	assert.Equal(t, wire.Log{RequestID: "req-1", Time: at, Stream: "stdout", Text: "[ERROR] E: x\rTraceback\n",
		Frame: 0xA55A0017, Record: "[ERROR] E: x\nTraceback"}, logs[2], "the error report's frame message is its own")
	assert.NotContains(t, raw[1], `"frame"`, "plain lines carry no frame fields")
	assert.NotContains(t, raw[1], `"lead"`)
}
