package devside

// The dispatcher is the developer end of the relay. It receives the invocations that sandboxes relay, acks
// them, runs each in its function's executor, streams the handler's log lines back, and answers with the result
// or Lambda's error document. Mirrored copies (mirror.go) it runs without acking or answering them. The same dispatcher serves `plldb local` (sandboxes emulated in-process) and AWS
// mode (sandboxes in the cloud); only the link differs.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
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
	// Credentials chooses the AWS credentials of an invocation from those its sandbox sent (may be nil); nil
	// Credentials: none.
	Credentials func(ctx context.Context, sent *wire.Credentials) *executor.Credentials
	// OnMirror hears each mirrored invocation's two results (Hooks.OnMirror); MirrorGrace is how long past its
	// deadline a finished copy waits for the deployed answer (0: DefaultMirrorGrace).
	OnMirror    func(MirrorReport)
	MirrorGrace time.Duration
	// Session is this developer's own session id. A knocked invocation (selective mode) whose knock names another
	// session is refused, and with Session empty every knocked one is (see invoke).
	Session string
	Logger  *slog.Logger
}

// dispatcher serves invocations arriving on a link until it is closed or its context ends.
type dispatcher struct {
	cfg dispatchConfig
	log *slog.Logger

	mu       sync.Mutex
	inflight map[string]string // request id → peer of the sandbox that sent it
	// sent are the acks and answers recently sent to sandboxes, by request id and type, kept for redelivery
	// while the relay may still nack them (see redeliver).
	sent map[sentKey]*sentMessage
	// mirrors are the mirrored invocations whose two results are not both reported yet (mirror.go), by request
	// id; emptied when Run ends, after which nothing more is reported.
	mirrors map[string]*mirrorState
	wg      sync.WaitGroup
}

// A sandbox's connection can drop and come back at any time (API Gateway closes connections at 2 hours, networks
// fail); its peer id stays the same across the reconnect, and the relay routes by peer. A message the developer
// sends to a sandbox between two of its connections is nacked ("destination peer not connected"), and an answer
// lost that way left the caller waiting until the proxy gave up at the deadline with a misleading Plldb.Timeout,
// though the handler had run. So the dispatcher keeps each ack and answer for redeliverWatch after sending it,
// and when the relay nacks it as undeliverable, sends it again, with backoff, until the invocation's deadline.
// The proxy takes one answer per invocation and drops any other, so a redelivery never answers twice.
const (
	// ackBudget is how long after an invocation arrives its ack may still leave, when the invocation does not say
	// its sandbox's ack timeout (wire.Invoke.AckTimeoutMs; then two thirds of that): two thirds of the default
	// (proxy.DefaultAckTimeout, 3 s), leaving the rest for the relay to carry the ack.
	ackBudget        = 2 * time.Second
	redeliverWatch   = 10 * time.Second
	redeliverBackoff = 50 * time.Millisecond
	redeliverMax     = time.Second
)

type sentKey struct {
	id string
	t  wire.Type
}

type sentMessage struct {
	env      *wire.Envelope
	sentAt   time.Time
	until    time.Time // the invocation's deadline: no redelivery after it
	expires  time.Time // forgotten after this (redeliverWatch after the last send)
	attempts int
	retrying bool
}

// redeliverable are the nack reasons of a destination between connections, or a relay that failed this once.
func redeliverable(reason string) bool {
	switch reason {
	case relay.ReasonNotConnected, relay.ReasonGone, relay.ReasonFailed, relay.ReasonUnavailable:
		return true
	}
	return false
}

// newDispatcher returns a dispatcher; Run starts it.
func newDispatcher(cfg dispatchConfig) *dispatcher {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &dispatcher{cfg: cfg, log: log, inflight: map[string]string{}, sent: map[sentKey]*sentMessage{}, mirrors: map[string]*mirrorState{}}
}

// Run reads the link until ctx ends or the link's receive channel closes, then waits for the invocations it
// started. Invocations still running when ctx ends are cancelled through their context, so the executor
// answers them with an error rather than leaving a caller waiting.
func (d *dispatcher) Run(ctx context.Context) error {
	defer d.wg.Wait()
	defer d.stopMirrors() // first: a copy cancelled by the shutdown is not reported
	prune := time.NewTicker(time.Second)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-prune.C:
			d.mu.Lock()
			for k, m := range d.sent {
				if !m.retrying && now.After(m.expires) {
					delete(d.sent, k)
				}
			}
			d.mu.Unlock()
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
	l := wire.Log{RequestID: line.RequestID, Time: line.Time, Stream: line.Stream, Text: line.Text}
	if line.Frame != 0 {
		l.Frame, l.Lead = line.Frame, line.Lead
		// Most records are their text: send the message only when it differs (the error report), so a big
		// record does not cross the relay twice.
		if line.Lead < 0 || line.Lead > len(line.Text) || line.Record != line.Text[line.Lead:] {
			l.Record = line.Record
		}
	}
	env, err := wire.NewEnvelope(wire.TypeLog, line.RequestID, l)
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
		if inv.Mirror {
			// Registered here, in arrival order, so that the deployed answer behind it finds it.
			if !d.registerMirror(env.From, &inv) {
				d.log.Warn("refusing a mirrored invocation whose request id is already mirrored", "request", inv.RequestID, "from", env.From)
				return
			}
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.mirror(ctx, env.From, &inv)
			}()
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.invoke(ctx, env.From, &inv)
		}()
	case wire.TypeDeployed:
		d.deployed(env)
	case wire.TypeNack:
		var n wire.Nack
		_ = env.DecodeBody(&n)
		if d.redeliver(ctx, n) {
			return
		}
		d.log.Warn("relay could not deliver a message", "ref", n.Ref, "type", n.T, "reason", n.Reason)
	case wire.TypeHello, wire.TypeBye, wire.TypePong:
		d.log.Debug("relay message", "type", env.T, "from", env.From)
	default:
		d.log.Debug("ignoring message", "type", env.T, "from", env.From)
	}
}

func (d *dispatcher) invoke(ctx context.Context, peer string, inv *wire.Invoke) {
	// The sandbox's credentials stay with this goroutine, for this invocation: hooks and observers see the
	// invocation without them, and they are gone with it.
	sent := inv.Credentials
	inv.Credentials = nil
	id := inv.RequestID
	log := d.log.With("request", id, "function", functionLabel(inv.Function))
	// Not acking a refused invocation lets the sandbox fall back to the function's own runtime.
	sender, tgt, ok := d.admit(peer, inv, log)
	if !ok {
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
	until := inv.Deadline
	if until.IsZero() {
		until = time.Now().Add(redeliverWatch)
	}
	// The sandbox waits for the ack only so long (its ack timeout), then falls back to the function's own
	// runtime. An ack that leaves later (the link was down and Send waited for the reconnect) arrives after the
	// fallback ran the invocation, so it is not sent, not sent again, and the handler does not run.
	budget := ackBudget
	if inv.AckTimeoutMs > 0 {
		budget = time.Duration(inv.AckTimeoutMs) * time.Millisecond * 2 / 3
	}
	ackBy := time.Now().Add(budget)
	ackUntil := until
	if ackBy.Before(ackUntil) {
		ackUntil = ackBy
	}
	d.remember(ack, ackUntil)
	ackCtx, cancelAck := context.WithDeadline(ctx, ackBy)
	err = d.cfg.Link.Send(ackCtx, ack)
	cancelAck()
	if err != nil {
		d.forget(ack)
		if ctx.Err() == nil {
			log.Warn("could not acknowledge the invocation in time; not running it (the sandbox falls back or answers Plldb.NoDeveloper)",
				"budget", budget, "err", err)
		} else {
			log.Warn("send ack", "err", err)
		}
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
	out, runErr := d.run(ctx, tgt, inv, sent, deadline)
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
	d.remember(reply, until)
	if err := d.cfg.Link.Send(sendCtx, reply); err != nil {
		log.Warn("send answer", "err", err)
	}
}

// run runs inv on tgt's executor until deadline, with the credentials chosen from those its sandbox sent.
func (d *dispatcher) run(ctx context.Context, tgt target, inv *wire.Invoke, sent *wire.Credentials, deadline time.Time) (executor.Outcome, error) {
	var creds *executor.Credentials
	if d.cfg.Credentials != nil {
		creds = d.cfg.Credentials(ctx, sent)
	}
	return tgt.Runner.Invoke(ctx, executor.Invocation{
		Credentials:     creds,
		RequestID:       inv.RequestID,
		Event:           inv.Event,
		Deadline:        deadline,
		InvokedARN:      inv.Function.ARN,
		TraceID:         inv.TraceID,
		ClientContext:   inv.ClientContext,
		CognitoIdentity: inv.CognitoIdentity,
		TenantID:        inv.TenantID,
	})
}

// admit runs the checks every invocation passes, mirrored copies included, and finds the function that runs it:
// the sender's own, knocked for this session if knocked at all, and served here. It logs why it refuses one.
func (d *dispatcher) admit(peer string, inv *wire.Invoke, log *slog.Logger) (string, target, bool) {
	// The relay stamps from with the sender's peer id, which its ticket put in its function's namespace: that is
	// the function the invocation comes from, whatever the body says. The relay refuses inline invocations that
	// name another function; chunked ones it cannot read, so the check is here.
	sender := ticket.PeerFunction(peer)
	if sender == "" || inv.Function.Name != sender {
		log.Warn("refusing an invocation that names a function other than its sender's", "sender_function", sender)
		return "", target{}, false
	}
	// A knocked invocation is for the knock's session only. The relay refuses an inline invoke whose knock names a
	// session other than its sender's connection's; a chunked one it cannot read, so the check is here too.
	if inv.Knock != nil && (d.cfg.Session == "" || inv.Knock.Session != d.cfg.Session) {
		log.Warn("refusing a knocked invocation whose knock names another session",
			"knock_session", inv.Knock.Session, "session", d.cfg.Session)
		return "", target{}, false
	}
	tgt, ok := d.cfg.Resolve(sender)
	if !ok {
		log.Warn("invocation for a function this session does not serve; refusing it")
		return "", target{}, false
	}
	return sender, tgt, true
}

// remember keeps a message to a sandbox for redelivery; call it before sending, so that a nack cannot come first.
func (d *dispatcher) remember(env *wire.Envelope, until time.Time) {
	d.mu.Lock()
	now := time.Now()
	d.sent[sentKey{env.ID, env.T}] = &sentMessage{env: env, sentAt: now, until: until, expires: now.Add(redeliverWatch)}
	d.mu.Unlock()
}

// redeliver handles a nack of a remembered message: unless the invocation's deadline has passed, the message is
// sent again after a backoff. It reports whether the nack was about such a message.
func (d *dispatcher) redeliver(ctx context.Context, n wire.Nack) bool {
	if !redeliverable(n.Reason) {
		return false
	}
	k := sentKey{n.Ref, n.T}
	d.mu.Lock()
	m, ok := d.sent[k]
	if !ok || m.retrying {
		d.mu.Unlock()
		return ok
	}
	if time.Now().After(m.until) {
		delete(d.sent, k)
		d.mu.Unlock()
		d.log.Warn("relay could not deliver a message before the invocation's deadline; giving up",
			"ref", n.Ref, "type", n.T, "to", m.env.To, "reason", n.Reason, "attempts", m.attempts+1)
		return true
	}
	m.retrying = true
	m.attempts++
	wait := min(redeliverBackoff<<min(m.attempts-1, 10), redeliverMax)
	d.mu.Unlock()
	d.log.Info("relay could not deliver a message; sending it again", "ref", n.Ref, "type", n.T, "reason", n.Reason,
		"attempt", m.attempts, "retry_in", wait)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		d.mu.Lock()
		m.retrying = false
		m.sentAt = time.Now()
		m.expires = m.sentAt.Add(redeliverWatch)
		d.mu.Unlock()
		sendCtx, cancel := context.WithDeadline(ctx, m.until)
		defer cancel()
		if err := d.cfg.Link.Send(sendCtx, m.env); err != nil {
			d.log.Debug("send again", "ref", n.Ref, "type", n.T, "err", err)
		}
	}()
	return true
}

// forget drops a remembered message: it must not be sent again.
func (d *dispatcher) forget(env *wire.Envelope) {
	d.mu.Lock()
	delete(d.sent, sentKey{env.ID, env.T})
	d.mu.Unlock()
}

// resendLimit bounds how many recent messages a reconnect sends again.
const resendLimit = 1024

// Reconnected sends again, on the developer's new connection (ctx is its OnConnect context), the acks and
// answers sent within redeliverWatch whose invocations have not reached their deadline, newest answers first. A
// connection can die silently: what was written to it after the relay stopped reading was accepted by the
// kernel and never arrived, and no nack comes back for it. The proxy takes one answer per invocation, so what
// did arrive the first time is dropped the second.
func (d *dispatcher) Reconnected(ctx context.Context) {
	now := time.Now()
	d.mu.Lock()
	var again []sentMessage // copies: a redelivery in progress updates sentAt
	for _, m := range d.sent {
		if now.Before(m.until) && now.Before(m.expires) {
			again = append(again, *m)
		}
	}
	d.mu.Unlock()
	sort.Slice(again, func(i, j int) bool {
		if ai, aj := again[i].env.T == wire.TypeAck, again[j].env.T == wire.TypeAck; ai != aj {
			return aj
		}
		return again[i].sentAt.After(again[j].sentAt)
	})
	if len(again) > resendLimit {
		again = again[:resendLimit]
	}
	if len(again) > 0 {
		d.log.Info("sending recent acks and answers again on the new connection", "count", len(again))
	}
	for _, m := range again {
		sendCtx, cancel := context.WithDeadline(ctx, m.until)
		err := d.cfg.Link.Send(sendCtx, m.env)
		cancel()
		if err != nil {
			d.log.Debug("send again after reconnect", "ref", m.env.ID, "type", m.env.T, "err", err)
			if ctx.Err() != nil {
				return
			}
		}
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
		we := wire.Error{
			RequestID: id, ErrorType: out.Err.ErrorType, ErrorMessage: out.Err.ErrorMessage, StackTrace: out.Err.StackTrace,
			Document: out.Err.Document,
		}
		if len(we.Document) > runtimeapi.MaxResponse {
			// The Runtime API refuses a document this large and Lambda answers the caller
			// Function.ResponseSizeTooLarge; saying so here also keeps the envelope within wire.MaxEnvelopeBytes,
			// which a document of 7.5 MB would not fit as base64.
			doc := runtimeapi.OversizeDocument(int64(len(we.Document)), runtimeapi.MaxResponse)
			var parsed runtimeapi.ErrorDocument
			_ = json.Unmarshal(doc, &parsed)
			we = wire.Error{RequestID: id, ErrorType: parsed.ErrorType, ErrorMessage: parsed.ErrorMessage, Document: doc}
		}
		if len(we.Document) > bigDocument {
			// The fields only serve peers too old to post the document; carried in full next to a document of
			// megabytes they could push the envelope past wire.MaxEnvelopeBytes.
			we.ErrorMessage, we.StackTrace = clipUTF8(we.ErrorMessage, 4096), nil
		}
		return wire.NewEnvelope(wire.TypeError, id, we)
	default:
		return wire.NewEnvelope(wire.TypeResult, id, wire.Result{RequestID: id, Payload: out.Payload, ContentType: out.ContentType})
	}
}

// bigDocument is the error document size past which answer shortens the fields that duplicate it.
const bigDocument = 1 << 20

// clipUTF8 shortens s to at most n bytes without splitting a character.
func clipUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func functionLabel(fn wire.FunctionIdentity) string {
	if fn.LogicalID != "" {
		return fn.LogicalID
	}
	return fn.Name
}
