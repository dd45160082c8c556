package devside

// The dispatcher is the developer end of the relay. It receives the invocations that sandboxes relay, acks
// them, runs each in its function's executor, streams the handler's log lines back, and answers with the result
// or Lambda's error document. The same dispatcher serves `plldb local` (sandboxes emulated in-process) and AWS
// mode (sandboxes in the cloud); only the link differs.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
)

// link is the dispatcher's connection to the relay; *wsclient.Client satisfies it.
type link interface {
	Send(ctx context.Context, e *wire.Envelope) error
	Recv() <-chan *wire.Envelope
}

// runner runs one invocation; *executor.Executor satisfies it.
type runner interface {
	Invoke(ctx context.Context, inv executor.Invocation) (executor.Outcome, error)
}

// Observer hears about every invocation; the CLI logs them and the debug adapter turns them into output events.
// Its methods are called from the invocation's own goroutine and must not block for long.
type Observer interface {
	Started(inv *wire.Invoke)
	Finished(inv *wire.Invoke, out executor.Outcome, err error)
}

// target is where the invocations of one function run.
type target struct {
	Runner runner
	// Timeout is the function's own configured timeout. The sandbox's deadline may be later (attach raises the
	// timeout so a paused developer is not cut off); the handler still sees its configured budget.
	Timeout time.Duration
}

// dispatchConfig wires a dispatcher.
type dispatchConfig struct {
	Link link
	// Resolve finds the target for a function by its deployed name (AWS_LAMBDA_FUNCTION_NAME): the name the
	// sender's ticket proved, never what the invocation's body claims. false means plldb does not serve it.
	Resolve  func(name string) (target, bool)
	Observer Observer
	// BeforeRun, when set, runs before each invocation's handler (Hooks.BeforeRun).
	BeforeRun func(ctx context.Context, inv *wire.Invoke)
	Logger    *slog.Logger
}

// dispatcher serves invocations arriving on a link until it is closed or its context ends.
type dispatcher struct {
	cfg dispatchConfig
	log *slog.Logger

	mu       sync.Mutex
	inflight map[string]string // request id → peer of the sandbox that sent it
	wg       sync.WaitGroup
}

// newDispatcher returns a dispatcher; Run starts it.
func newDispatcher(cfg dispatchConfig) *dispatcher {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &dispatcher{cfg: cfg, log: log, inflight: map[string]string{}}
}

// Run reads the link until ctx ends or the link's receive channel closes, then waits for the invocations it
// started. Invocations still running when ctx ends are cancelled through their context, so the executor
// answers them with an error rather than leaving a caller waiting.
func (d *dispatcher) Run(ctx context.Context) error {
	defer d.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case env, ok := <-d.cfg.Link.Recv():
			if !ok {
				return nil
			}
			d.handle(ctx, env)
		}
	}
}

// Log routes a line the handler printed to the sandbox that relayed its invocation. Lines of requests the
// dispatcher does not know (already answered) are dropped.
func (d *dispatcher) Log(ctx context.Context, line executor.LogLine) {
	d.mu.Lock()
	peer, ok := d.inflight[line.RequestID]
	d.mu.Unlock()
	if !ok {
		return
	}
	env, err := wire.NewEnvelope(wire.TypeLog, line.RequestID, wire.Log{
		RequestID: line.RequestID, Time: line.Time, Stream: line.Stream, Text: line.Text,
	})
	if err != nil {
		d.log.Warn("encode log line", "request", line.RequestID, "err", err)
		return
	}
	env.To = peer
	if err := d.cfg.Link.Send(ctx, env); err != nil {
		d.log.Debug("send log line", "request", line.RequestID, "err", err)
	}
}

func (d *dispatcher) handle(ctx context.Context, env *wire.Envelope) {
	switch env.T {
	case wire.TypeInvoke:
		var inv wire.Invoke
		if err := env.DecodeBody(&inv); err != nil {
			d.log.Warn("bad invoke envelope", "from", env.From, "err", err)
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.invoke(ctx, env.From, &inv)
		}()
	case wire.TypeNack:
		var n wire.Nack
		_ = env.DecodeBody(&n)
		d.log.Warn("relay could not deliver a message", "ref", n.Ref, "type", n.T, "reason", n.Reason)
	case wire.TypeHello, wire.TypeBye, wire.TypePong:
		d.log.Debug("relay message", "type", env.T, "from", env.From)
	default:
		d.log.Debug("ignoring message", "type", env.T, "from", env.From)
	}
}

func (d *dispatcher) invoke(ctx context.Context, peer string, inv *wire.Invoke) {
	id := inv.RequestID
	log := d.log.With("request", id, "function", functionLabel(inv.Function))
	// The relay stamps from with the sender's peer id, which its ticket put in its function's namespace: that is
	// the function the invocation comes from, whatever the body says. The relay refuses inline invocations that
	// name another function; chunked ones it cannot read, so the check is here.
	sender := ticket.PeerFunction(peer)
	if sender == "" || inv.Function.Name != sender {
		log.Warn("refusing an invocation that names a function other than its sender's", "sender_function", sender)
		return
	}
	tgt, ok := d.cfg.Resolve(sender)
	if !ok {
		// Not acking lets the sandbox fall back to the function's own runtime: it is not ours to answer.
		log.Warn("invocation for a function this session does not serve; letting the sandbox fall back")
		return
	}
	// Log lines go to the peer registered for the request id: another function reusing an id in flight must not
	// divert them. (The same function may: Lambda retries an asynchronous invocation under the same id.)
	d.mu.Lock()
	if prev, busy := d.inflight[id]; busy && ticket.PeerFunction(prev) != sender {
		d.mu.Unlock()
		log.Warn("refusing an invocation whose request id is in flight for another function", "sender_function", sender)
		return
	}
	d.inflight[id] = peer
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.inflight[id] == peer {
			delete(d.inflight, id)
		}
		d.mu.Unlock()
	}()
	ack, err := wire.NewEnvelope(wire.TypeAck, id, wire.Ack{RequestID: id})
	if err != nil {
		log.Error("encode ack", "err", err)
		return
	}
	ack.To = peer
	if err := d.cfg.Link.Send(ctx, ack); err != nil {
		log.Warn("send ack", "err", err)
		return
	}

	if d.cfg.BeforeRun != nil {
		d.cfg.BeforeRun(ctx, inv)
	}
	if d.cfg.Observer != nil {
		d.cfg.Observer.Started(inv)
	}
	deadline := inv.Deadline
	if tgt.Timeout > 0 {
		if own := time.Now().Add(tgt.Timeout); deadline.IsZero() || own.Before(deadline) {
			deadline = own
		}
	}
	out, runErr := tgt.Runner.Invoke(ctx, executor.Invocation{
		RequestID:       id,
		Event:           inv.Event,
		Deadline:        deadline,
		InvokedARN:      inv.Function.ARN,
		TraceID:         inv.TraceID,
		ClientContext:   inv.ClientContext,
		CognitoIdentity: inv.CognitoIdentity,
	})
	if d.cfg.Observer != nil {
		d.cfg.Observer.Finished(inv, out, runErr)
	}
	reply, err := answer(id, out, runErr)
	if err != nil {
		log.Error("encode answer", "err", err)
		return
	}
	reply.To = peer
	// The answer must get out even when the session is shutting down: the caller is waiting for it.
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.cfg.Link.Send(sendCtx, reply); err != nil {
		log.Warn("send answer", "err", err)
	}
}

// answer turns an executor outcome into the envelope the sandbox posts to the Runtime API.
func answer(id string, out executor.Outcome, runErr error) (*wire.Envelope, error) {
	switch {
	case runErr != nil:
		typ := "Plldb.ExecutorError"
		if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
			typ = "Plldb.SessionEnded"
		}
		return wire.NewEnvelope(wire.TypeError, id, wire.Error{
			RequestID: id, ErrorType: typ, ErrorMessage: fmt.Sprintf("plldb could not run the invocation: %v", runErr),
		})
	case out.Err != nil:
		return wire.NewEnvelope(wire.TypeError, id, wire.Error{
			RequestID: id, ErrorType: out.Err.ErrorType, ErrorMessage: out.Err.ErrorMessage, StackTrace: out.Err.StackTrace,
		})
	default:
		return wire.NewEnvelope(wire.TypeResult, id, wire.Result{RequestID: id, Payload: out.Payload})
	}
}

func functionLabel(fn wire.FunctionIdentity) string {
	if fn.LogicalID != "" {
		return fn.LogicalID
	}
	return fn.Name
}
