package proxy

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// Agent names the proxy in its hello.
const Agent = "plldb-proxy/0.1.0"

// linkPoll is how often an acknowledged invocation checks that the link is still up. The Link interface has
// no disconnect notification, and a poll this coarse costs nothing on the pass-through path.
const linkPoll = 100 * time.Millisecond

// HelloEnvelope is the first message the proxy sends on every (re)connection.
func HelloEnvelope(sc *SessionConfig) *wire.Envelope {
	fn := sc.Function
	body, _ := json.Marshal(wire.Hello{Role: wire.RoleFunction, Peer: sc.Peer, Agent: Agent, Function: &fn})
	return &wire.Envelope{V: wire.Version, T: wire.TypeHello, Body: body}
}

type session struct {
	p   *proxy
	cfg SessionConfig
	// env and redacted are cfg.Env after Redact, made at the first invoke: a selective sandbox may hold links
	// that never carry one.
	envOnce  sync.Once
	env      map[string]string
	redacted []string
	// creds are the role's credentials sent with each invocation when SendCredentials; nil otherwise. Never
	// logged: wire.Credentials prints redacted.
	creds *wire.Credentials

	mu   sync.Mutex
	link Link
	cur  *inflight
	// linked is closed once the first link is up; a child-less proxy takes no invocation before that.
	linked chan struct{}
}

// inflight is the invocation currently with the developer; the pump routes its envelopes to ch.
type inflight struct {
	id   string
	ch   chan *wire.Envelope
	done chan struct{}
}

func newSession(p *proxy, cfg *SessionConfig) *session {
	c := *cfg
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.DeadlineMargin <= 0 {
		c.DeadlineMargin = DefaultDeadlineMargin
	}
	if c.DisconnectGrace <= 0 {
		c.DisconnectGrace = DefaultDisconnectGrace
	}
	s := &session{p: p, cfg: c, linked: make(chan struct{})}
	if c.SendCredentials {
		creds := &wire.Credentials{AccessKeyID: c.Env["AWS_ACCESS_KEY_ID"], SecretAccessKey: c.Env["AWS_SECRET_ACCESS_KEY"], SessionToken: c.Env["AWS_SESSION_TOKEN"]}
		if creds.Valid() {
			s.creds = creds
		} else {
			p.log.Warn("PLLDB_CREDENTIALS=function, but the sandbox has no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the developer's handler runs without credentials")
		}
	}
	return s
}

// start dials in the background so that the child's initialisation (or, in selective mode, the knocked
// invocation's wait) is not held up by the network, and then pumps the link until ctx ends. linked is closed
// once the link is up.
func (s *session) start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		link := s.dial(ctx)
		if link == nil {
			return
		}
		s.mu.Lock()
		s.link = link
		s.mu.Unlock()
		close(s.linked)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.pump(ctx, link)
		}()
		<-ctx.Done()
		if err := link.Close(); err != nil {
			s.p.log.Debug("close link", "session", s.cfg.SessionID, "err", err)
		}
	}()
}

func (s *session) dial(ctx context.Context) Link {
	backoff := 250 * time.Millisecond
	for {
		link, err := s.cfg.Dial(ctx)
		if err == nil {
			s.p.log.Info("connected to the plldb relay", "session", s.cfg.SessionID, "peer", s.cfg.Peer)
			return link
		}
		if ctx.Err() != nil {
			return nil
		}
		s.p.log.Warn("connect to the plldb relay failed; invocations fall back until it works", "session", s.cfg.SessionID,
			"err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// pump drains the link so that its reader never blocks, prints log envelopes, and hands invocation traffic to
// the current invocation in arrival order.
func (s *session) pump(ctx context.Context, link Link) {
	recv := link.Recv()
	for {
		var e *wire.Envelope
		var ok bool
		select {
		case e, ok = <-recv:
		case <-ctx.Done():
			return
		}
		if !ok {
			return
		}
		if e == nil {
			continue
		}
		if e.V != wire.Version {
			s.p.log.Warn("dropping envelope of another protocol version", "v", e.V, "t", e.T)
			continue
		}
		switch e.T {
		case wire.TypeLog:
			s.printLog(e)
			continue
		case wire.TypeAck, wire.TypeNack, wire.TypeResult, wire.TypeError, wire.TypeBye:
		default:
			continue
		}
		s.mu.Lock()
		f := s.cur
		s.mu.Unlock()
		if f == nil || !f.owns(e) {
			s.p.log.Debug("dropping envelope for no current invocation", "t", e.T, "id", e.ID)
			continue
		}
		select {
		case f.ch <- e:
		case <-f.done:
		case <-ctx.Done():
			return
		}
	}
}

func (f *inflight) owns(e *wire.Envelope) bool {
	switch e.T {
	case wire.TypeBye:
		return true
	case wire.TypeNack:
		var n wire.Nack
		if json.Unmarshal(e.Body, &n) == nil {
			switch n.T {
			case "", wire.TypeInvoke, wire.TypeChunk:
			default:
				// A nack of another message of ours (the hello of a reconnect, a ping) says nothing about the
				// invocation: taken for the invocation's, it made a delivered invocation fall back.
				return false
			}
			return n.Ref == f.id || n.Ref == "" || n.T == wire.TypeChunk || e.ID == f.id
		}
		return e.ID == f.id || e.ID == ""
	}
	if e.ID != "" {
		return e.ID == f.id
	}
	var b struct {
		RequestID string `json:"requestId"`
	}
	return json.Unmarshal(e.Body, &b) == nil && b.RequestID == f.id
}

func (s *session) printLog(e *wire.Envelope) {
	var l wire.Log
	if err := json.Unmarshal(e.Body, &l); err != nil {
		s.p.log.Warn("dropping malformed log envelope", "id", e.ID, "err", err)
		return
	}
	if err := l.CheckFrame(); err != nil {
		// Bad framing from the developer side must not cost the line: it goes to stdout as plain text.
		s.p.log.Warn("relayed log has bad framing; printing it plainly", "id", e.ID, "err", err)
		l.Frame = 0
	}
	if err := writeLog(s.p.cfg.Stdout, s.p.cfg.Telemetry, &l); err != nil {
		s.p.log.Warn("print relayed log", "err", err)
	}
}

// writeLog writes a relayed log line as the runtime would have: a framed record as one frame on the telemetry
// pipe when the sandbox has one (what stays of an unfinished line before it goes to stdout as it is), anything
// else, or everything without a pipe, to stdout, ended with a newline.
func writeLog(stdout, telemetry io.Writer, l *wire.Log) error {
	if telemetry == nil || l.Frame == 0 || l.CheckFrame() != nil {
		text := l.Text
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		_, err := io.WriteString(stdout, text)
		return err
	}
	if l.Lead > 0 {
		if _, err := io.WriteString(stdout, l.Text[:l.Lead]); err != nil {
			return err
		}
	}
	_, err := telemetry.Write(telemetryFrame(l))
	return err
}

// telemetryFrame is awslambdaric's FramedTelemetryLogSink frame of a record: frame type (4 bytes), message
// length (4), timestamp in µs since the epoch (8), all big-endian, then the message. It is written with one
// write(2), as awslambdaric writes it: the platform reads the pipe as a stream of frames, and the child
// runtime writes its own frames to the same pipe.
func telemetryFrame(l *wire.Log) []byte {
	ts := l.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	msg := l.FrameMessage()
	b := make([]byte, 16, 16+len(msg))
	binary.BigEndian.PutUint32(b[0:], l.Frame)
	binary.BigEndian.PutUint32(b[4:], uint32(len(msg)))
	binary.BigEndian.PutUint64(b[8:], uint64(ts.UnixMicro()))
	return append(b, msg...)
}

func (s *session) currentLink() Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.link
}

// handle offers one invocation to the developer. It reports true when the invocation was answered (by the
// developer, or with one of plldb's errors) or ctx ended, and false when it falls back to the child runtime,
// which the caller then hands it to unchanged.
func (s *session) handle(ctx context.Context, inv runtimeapi.Invocation) bool {
	return s.handleKnocked(ctx, inv, nil)
}

// handleKnocked is handle for an invocation that carried a valid knock (selective mode): the invoke names the
// knock, which the relay checks against the link's session.
func (s *session) handleKnocked(ctx context.Context, inv runtimeapi.Invocation, knock *wire.KnockRef) bool {
	arrived := time.Now()
	link := s.currentLink()
	if link != nil && !link.Connected() && s.cfg.Strict {
		// Strict mode has nothing to fall back to: a link that is reconnecting (its connection was replaced or
		// dropped) gets until the ack timeout to come back, rather than the invocation failing at once.
		s.awaitLink(ctx, link, arrived.Add(s.cfg.AckTimeout))
	}
	if link == nil || !link.Connected() {
		return s.noDeveloper(inv, "no connection to the plldb relay")
	}
	f := &inflight{id: inv.RequestID, ch: make(chan *wire.Envelope, 16), done: make(chan struct{})}
	s.mu.Lock()
	s.cur = f
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
		close(f.done)
	}()

	env, err := s.invokeEnvelope(inv, knock, false)
	if err != nil {
		s.p.log.Error("encode invoke", "request_id", inv.RequestID, "err", err)
		return s.noDeveloper(inv, "the invocation could not be encoded")
	}
	sendCtx, cancel := context.WithTimeout(ctx, s.cfg.AckTimeout)
	err = link.Send(sendCtx, env)
	cancel()
	if err != nil {
		return s.noDeveloper(inv, fmt.Sprintf("sending it to the developer failed: %v", err))
	}

	ackTimer := time.NewTimer(s.cfg.AckTimeout)
	defer ackTimer.Stop()
	ackC := ackTimer.C
	var deadlineC <-chan time.Time
	if !inv.Deadline.IsZero() {
		t := time.NewTimer(time.Until(inv.Deadline.Add(-s.cfg.DeadlineMargin)))
		defer t.Stop()
		deadlineC = t.C
	}
	var graceTimer *time.Timer
	var graceC <-chan time.Time
	graceFromBye := false
	startGrace := func(bye bool) {
		graceFromBye = graceFromBye || bye
		if graceTimer == nil {
			graceTimer = time.NewTimer(s.cfg.DisconnectGrace)
			graceC = graceTimer.C
		}
	}
	defer func() {
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()
	var pollC <-chan time.Time
	acked, byeBeforeAck := false, false

	for {
		select {
		case e := <-f.ch:
			switch e.T {
			case wire.TypeAck:
				if !acked {
					acked = true
					ackTimer.Stop()
					ackC = nil
					poll := time.NewTicker(linkPoll)
					defer poll.Stop()
					pollC = poll.C
				}
			case wire.TypeNack:
				if !acked {
					return s.noDeveloper(inv, "the relay could not deliver it: "+nackReason(e))
				}
				s.p.log.Warn("nack after ack ignored", "request_id", inv.RequestID, "reason", nackReason(e))
			case wire.TypeBye:
				if !acked {
					// The invocation may already be with the developer, who acks it once reconnected: falling back
					// now could run it twice. The ack timeout still bounds the wait.
					if !byeBeforeAck {
						byeBeforeAck = true
						s.p.log.Info("developer left before acknowledging; waiting for the ack until the ack timeout",
							"request_id", inv.RequestID, "reason", byeReason(e))
					}
					continue
				}
				s.p.log.Warn("developer left during an invocation; waiting for them to come back",
					"request_id", inv.RequestID, "grace", s.cfg.DisconnectGrace, "reason", byeReason(e))
				startGrace(true)
			case wire.TypeResult:
				s.answerResult(ctx, inv, e)
				return true
			case wire.TypeError:
				s.answerDeveloperError(ctx, inv, e)
				return true
			}
		case <-ackC:
			if byeBeforeAck {
				return s.noDeveloper(inv, fmt.Sprintf("the developer left and did not acknowledge it within %s", s.cfg.AckTimeout))
			}
			return s.noDeveloper(inv, fmt.Sprintf("no acknowledgement from the developer within %s", s.cfg.AckTimeout))
		case <-pollC:
			if !link.Connected() {
				if graceTimer == nil {
					s.p.log.Warn("relay connection lost during an invocation; waiting for it to come back",
						"request_id", inv.RequestID, "grace", s.cfg.DisconnectGrace)
				}
				startGrace(false)
			} else if graceTimer != nil && !graceFromBye {
				// Our own connection dropped and came back: the developer is still there.
				s.p.log.Info("relay connection back", "request_id", inv.RequestID)
				graceTimer.Stop()
				graceTimer, graceC = nil, nil
			}
		case <-graceC:
			s.answerError(ctx, inv.RequestID, ErrorTypeDeveloperDisconnected, fmt.Sprintf(
				"plldb: the developer's debugger disconnected during this invocation and did not come back within %s; "+
					"it was not run again by the function's own runtime because the handler may already have had side effects",
				s.cfg.DisconnectGrace))
			return true
		case <-deadlineC:
			timeout := inv.Deadline.Sub(arrived).Round(time.Second)
			s.answerError(ctx, inv.RequestID, ErrorTypeTimeout, fmt.Sprintf(
				"plldb: the developer did not answer before the function's deadline (function timeout about %s; "+
					"answered %s early): the handler was paused in the debugger or is too slow. "+
					"Raise the function's timeout or resume sooner.", timeout, s.cfg.DeadlineMargin))
			return true
		case <-ctx.Done():
			return true
		}
	}
}

// awaitLink waits until link is connected, until, or ctx ends.
func (s *session) awaitLink(ctx context.Context, link Link, until time.Time) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !link.Connected() && time.Now().Before(until) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *session) invokeEnvelope(inv runtimeapi.Invocation, knock *wire.KnockRef, mirror bool) (*wire.Envelope, error) {
	s.envOnce.Do(func() { s.env, s.redacted = Redact(s.cfg.Env) })
	fn := s.cfg.Function
	fn.ARN = inv.FunctionARN
	body, err := json.Marshal(wire.Invoke{
		RequestID:       inv.RequestID,
		Function:        fn,
		Deadline:        inv.Deadline,
		TraceID:         inv.TraceID,
		ClientContext:   inv.ClientContext,
		CognitoIdentity: inv.CognitoIdentity,
		TenantID:        inv.TenantID,
		Event:           inv.Event,
		Env:             s.env,
		Redacted:        s.redacted,
		AckTimeoutMs:    s.cfg.AckTimeout.Milliseconds(),
		Credentials:     s.creds,
		Knock:           knock,
		Mirror:          mirror,
	})
	if err != nil {
		return nil, fmt.Errorf("marshal invoke %s: %w", inv.RequestID, err)
	}
	return &wire.Envelope{V: wire.Version, T: wire.TypeInvoke, ID: inv.RequestID, Body: body}, nil
}

// noDeveloper answers Plldb.NoDeveloper in strict mode (true: answered), and otherwise reports false: the
// invocation falls back to the original runtime.
func (s *session) noDeveloper(inv runtimeapi.Invocation, reason string) bool {
	if s.cfg.Strict {
		s.p.log.Warn("no developer, strict mode: answering with an error", "request_id", inv.RequestID, "reason", reason)
		s.answerError(context.Background(), inv.RequestID, ErrorTypeNoDeveloper,
			"plldb strict mode: no developer took this invocation ("+reason+"); the function's own runtime was not used")
		return true
	}
	s.p.log.Info("no developer, falling back to the function's runtime", "request_id", inv.RequestID, "reason", reason)
	return false
}

func (s *session) answerResult(ctx context.Context, inv runtimeapi.Invocation, e *wire.Envelope) {
	var r wire.Result
	if err := e.DecodeBody(&r); err != nil {
		s.answerError(ctx, inv.RequestID, "Plldb.InvalidAnswer", fmt.Sprintf("plldb: the developer's result could not be decoded: %v", err))
		return
	}
	if err := wire.ValidContentType(r.ContentType); err != nil {
		s.answerError(ctx, inv.RequestID, "Plldb.InvalidAnswer", fmt.Sprintf("plldb: the developer's result is unusable: %v", err))
		return
	}
	var hdr http.Header
	if r.ContentType != "" {
		// As awslambdaric posts it: Lambda hands the caller a handler's bytes with this content type.
		hdr = http.Header{"Content-Type": {r.ContentType}}
	}
	pctx, cancel := answerContext(ctx)
	defer cancel()
	if err := s.p.real.Respond(pctx, inv.RequestID, r.Payload, hdr); err != nil {
		s.p.log.Error("post developer result", "request_id", inv.RequestID, "err", err)
	}
}

func (s *session) answerDeveloperError(ctx context.Context, inv runtimeapi.Invocation, e *wire.Envelope) {
	var we wire.Error
	if err := e.DecodeBody(&we); err != nil {
		s.answerError(ctx, inv.RequestID, "Plldb.InvalidAnswer", fmt.Sprintf("plldb: the developer's error could not be decoded: %v", err))
		return
	}
	if err := we.CheckDocument(); err != nil {
		s.answerError(ctx, inv.RequestID, "Plldb.InvalidAnswer", fmt.Sprintf("plldb: the developer's error is unusable: %v", err))
		return
	}
	pctx, cancel := answerContext(ctx)
	defer cancel()
	var err error
	if len(we.Document) > 0 {
		// The runtime's own document, posted as awslambdaric 4.2.2 posts it to /invocation/{id}/error:
		// Content-Type application/json and no Lambda-Runtime-Function-Error-Type header (it sends that one
		// with init errors only).
		err = s.p.real.Error(pctx, inv.RequestID, we.Document, "", http.Header{"Content-Type": {"application/json"}})
	} else {
		// An older developer side, or an error made by its Go code: the document is built from the fields.
		doc, _ := json.Marshal(runtimeapi.ErrorDocument{ErrorMessage: we.ErrorMessage, ErrorType: we.ErrorType, StackTrace: we.StackTrace})
		err = s.p.real.Error(pctx, inv.RequestID, doc, we.ErrorType, nil)
	}
	if err != nil {
		s.p.log.Error("post developer error", "request_id", inv.RequestID, "err", err)
	}
}

func (s *session) answerError(ctx context.Context, id, errorType, msg string) {
	doc, _ := json.Marshal(runtimeapi.ErrorDocument{ErrorMessage: msg, ErrorType: errorType})
	pctx, cancel := answerContext(ctx)
	defer cancel()
	if err := s.p.real.Error(pctx, id, doc, errorType, nil); err != nil {
		s.p.log.Error("post error", "request_id", id, "error_type", errorType, "err", err)
	}
}

func nackReason(e *wire.Envelope) string {
	var n wire.Nack
	if json.Unmarshal(e.Body, &n) == nil && n.Reason != "" {
		return n.Reason
	}
	return "no reason given"
}

func byeReason(e *wire.Envelope) string {
	var b wire.Bye
	if json.Unmarshal(e.Body, &b) == nil && b.Reason != "" {
		return b.Reason
	}
	return "no reason given"
}
