package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/carrier"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// selector is selective mode's part of the byte relay (tcpRelay): it reads the Runtime API's answers on each
// relayed connection, and for each invocation (a 200 answer carrying Lambda-Runtime-Aws-Request-Id) decides
// where it goes:
//
//   - no knock: the answer's bytes, exactly as read, go to the child. The check is carrier.Check's byte scan of
//     the event and the client context; nothing is dialled, sent or asked.
//   - a valid knock of a session the sandbox has a link to (Selective.Links): the invocation, without its knock,
//     goes to that session's developer over that session's own link (dialled at the session's first such knock),
//     and the proxy asks the real API for the child's next invocation on the same connection. If no developer
//     takes it, the child gets it without its knock.
//   - anything else that looks like a knock (forged, expired, misdirected, malformed, conflicting, or a valid
//     knock of a session this sandbox has no link to): the child gets the invocation without the knock, and one
//     log line says why, never with the token.
//   - a valid knock of a mirror session: the child gets it without its knock at once, and a copy goes to the
//     developer (mirror.go).
//
// Requests from the child are not read at all (except while a mirrored invocation waits for its answer on that
// connection, mirror.go): they are spliced to the API as in pass-through. A connection of
// the Runtime API carries one request at a time (no client pipelines), so while the child waits for its
// invocation nothing else is written upstream, and the proxy's own GET /next cannot interleave with the child's.
type selector struct {
	p   *proxy
	cfg *SelectiveConfig
	// links are the sessions knocked invocations can go to, by session id; each starts at its first valid knock.
	links map[string]*selLink
	// mirrors tells whether any link is a mirror session: only then can a connection have a mirrored invocation
	// pending, which each invocation handed out must end (relayConn.handOut).
	mirrors bool

	// linkCtx ends the links; wg waits for their goroutines.
	linkCtx  context.Context
	stopLink context.CancelFunc
	mu       sync.Mutex
	closed   bool
	wg       sync.WaitGroup
}

// selLink is one session's link in selective mode.
type selLink struct {
	sess    *session
	started bool // under selector.mu
}

func newSelector(p *proxy, cfg *SelectiveConfig) *selector {
	ctx, cancel := context.WithCancel(context.Background())
	s := &selector{p: p, cfg: cfg, links: make(map[string]*selLink, len(cfg.Links)), linkCtx: ctx, stopLink: cancel}
	for _, sc := range cfg.Links {
		s.links[sc.SessionID] = &selLink{sess: newSession(p, sc)}
		s.mirrors = s.mirrors || sc.Mirror
	}
	return s
}

// close ends the links that were started and waits for their goroutines.
func (s *selector) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stopLink()
	s.wg.Wait()
}

// start starts l's link once. It reports false when the selector is closed.
func (s *selector) start(l *selLink) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if !l.started {
		l.started = true
		s.p.log.Info("first knocked invocation of this session: connecting to the plldb relay", "session", l.sess.cfg.SessionID)
		l.sess.start(s.linkCtx, &s.wg)
	}
	return true
}

// link starts l's link once and waits up to the session's ConnectWait for it. It reports whether the link is up.
func (s *selector) link(ctx context.Context, l *selLink) bool {
	if !s.start(l) {
		return false
	}
	sess := l.sess
	wait := sess.cfg.ConnectWait
	if wait <= 0 {
		wait = DefaultConnectWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-sess.linked:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// answers copies the Runtime API's answers on up to child until up ends, routing invocations as the type's
// comment says. ctx ends invocations held for a developer.
func (s *selector) answers(ctx context.Context, rc *relayConn, up net.Conn) error {
	child := rc.child
	rec := &recorder{r: up}
	br := bufio.NewReaderSize(rec, 64<<10)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return rawRest(child, up, rec)
		}
		invocation := resp.StatusCode == http.StatusOK && resp.Header.Get(runtimeapi.HeaderRequestID) != ""
		var body []byte
		if invocation && resp.ContentLength < 0 {
			// Chunked or until close: read it as HTTP does; the raw bytes are what the recorder kept.
			body, err = io.ReadAll(resp.Body)
		} else {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		if err != nil {
			return rawRest(child, up, rec)
		}
		raw := rec.take(br.Buffered())
		if invocation && body == nil {
			body = raw[len(raw)-int(resp.ContentLength):]
		}
		var o carrier.Outcome
		if invocation {
			if s.mirrors {
				rc.handOut()
			}
			o = s.check(resp, body)
		}
		if o.Found == 0 && o.Err == nil {
			if _, err := child.Write(raw); err != nil {
				return fmt.Errorf("relay to the runtime: %w", err)
			}
			rec.done()
			continue
		}
		out, repoll := s.decide(ctx, rc, resp, body, o)
		rec.done()
		if repoll {
			if err := s.poll(up); err != nil {
				return err
			}
			continue
		}
		if _, err := child.Write(out); err != nil {
			return fmt.Errorf("relay to the runtime: %w", err)
		}
	}
}

// rawRest is the way out when the API's side is cut or is not HTTP as net/http reads it: the child gets every
// byte read so far and then the rest as it comes, as it would without plldb, and meets the problem itself.
func rawRest(child, up net.Conn, rec *recorder) error {
	if _, err := child.Write(rec.take(0)); err != nil {
		return fmt.Errorf("relay to the runtime: %w", err)
	}
	if _, err := io.Copy(child, up); err != nil {
		return fmt.Errorf("relay to the runtime: %w", err)
	}
	return nil
}

// check finds, verifies and removes the invocation's knock. For an invocation without one, the unknocked path,
// its whole cost is carrier's byte scan of the event and the client context.
func (s *selector) check(resp *http.Response, body []byte) carrier.Outcome {
	cc := resp.Header.Get(runtimeapi.HeaderClientContext)
	if s.cfg.Verifier != nil {
		return carrier.Check(s.cfg.Verifier, body, cc)
	}
	r, err := carrier.Extract(body, cc)
	o := carrier.Outcome{Event: r.Event, ClientContext: r.ClientContext, Found: r.Found, Err: err}
	if o.Found != 0 && o.Err == nil {
		o.Err = fmt.Errorf("selective settings unusable: %w", s.cfg.Broken)
	}
	return o
}

// decide handles an invocation that mentions a knock, checked as o. It returns the answer the child gets (the
// invocation without its knock), or repoll when a developer answered it and the child still waits for an
// invocation.
func (s *selector) decide(ctx context.Context, rc *relayConn, resp *http.Response, body []byte, o carrier.Outcome) (out []byte, repoll bool) {
	inv, perr := runtimeapi.ParseInvocation(resp.Header, body)
	var l *selLink
	if o.Knocked {
		l = s.links[o.Claims.Issuer]
	}
	switch {
	case !o.Knocked:
	case perr != nil:
		o.Err = errors.New("the invocation's headers are malformed")
	case l == nil:
		o.Err = fmt.Errorf("no relay link to session %s in this sandbox", o.Claims.Issuer)
	case l.sess.cfg.Mirror:
		inv = withoutKnock(inv, o)
		s.p.log.Info("knocked invocation of a mirror session: the deployed code answers it, a copy goes to the developer",
			"request_id", inv.RequestID, "session", o.Claims.Issuer, "knock_id", o.Claims.ID, "carrier", carrierNames(o.Found))
		s.mirror(rc, l, inv, &wire.KnockRef{Session: o.Claims.Issuer, ID: o.Claims.ID})
		return stripped(resp, o), false
	case !s.link(ctx, l):
		o.Err = errors.New("the plldb relay could not be reached in time")
	default:
		sess := l.sess
		inv = withoutKnock(inv, o)
		s.p.log.Info("knocked invocation: relaying it to the developer", "request_id", inv.RequestID,
			"session", o.Claims.Issuer, "knock_id", o.Claims.ID, "carrier", carrierNames(o.Found))
		if sess.handleKnocked(ctx, inv, &wire.KnockRef{Session: o.Claims.Issuer, ID: o.Claims.ID}) {
			return nil, true
		}
		// No developer took it (handle logged why): the deployed code runs it, without the knock.
		return stripped(resp, o), false
	}
	// Reasons come from bridge/knock and layer/carrier, whose errors never contain the token.
	s.p.log.Warn("knock refused; the invocation runs the deployed code", "request_id", inv.RequestID,
		"carrier", carrierNames(o.Found), "reason", o.Err.Error())
	return stripped(resp, o), false
}

// withoutKnock is inv with o's event and client context, the knock removed.
func withoutKnock(inv runtimeapi.Invocation, o carrier.Outcome) runtimeapi.Invocation {
	inv.Event, inv.ClientContext = o.Event, o.ClientContext
	if inv.ClientContext != "" || inv.Header.Get(runtimeapi.HeaderClientContext) != "" {
		inv.Header.Set(runtimeapi.HeaderClientContext, inv.ClientContext)
	}
	return inv
}

// poll asks the real API for the child's next invocation on the connection the child is waiting on.
func (s *selector) poll(up net.Conn) error {
	req := "GET " + nextPath + " HTTP/1.1\r\nHost: " + s.p.cfg.RuntimeAPI + "\r\n\r\n"
	if _, err := io.WriteString(up, req); err != nil {
		return fmt.Errorf("poll the runtime api: %w", err)
	}
	return nil
}

// stripped is resp with o's event and client context: the headers as the API sent them (in canonical order)
// except for the body's length and the client context.
func stripped(resp *http.Response, o carrier.Outcome) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/%d.%d %s\r\n", resp.ProtoMajor, resp.ProtoMinor, resp.Status)
	h := resp.Header.Clone()
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	switch cc := h.Get(runtimeapi.HeaderClientContext); {
	case cc == "":
	case errors.Is(o.Err, carrier.ErrEvent) && !json.Valid([]byte(o.ClientContext)):
		// It mentions a knock that cannot be cut out of it, and the handler could not read it anyway (Lambda's
		// Invoke API only takes JSON): withheld, so that the knock never reaches the handler.
		h.Del(runtimeapi.HeaderClientContext)
	default:
		h.Set(runtimeapi.HeaderClientContext, o.ClientContext)
	}
	h.Set("Content-Length", strconv.Itoa(len(o.Event)))
	_ = h.Write(&b)
	b.WriteString("\r\n")
	b.Write(o.Event)
	return b.Bytes()
}

func carrierNames(c carrier.Carrier) string {
	var names []string
	for _, n := range []struct {
		c    carrier.Carrier
		name string
	}{{carrier.Header, "header"}, {carrier.ClientContext, "client-context"}, {carrier.SQS, "sqs"}, {carrier.EventBridge, "eventbridge"}} {
		if c&n.c != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// recorder keeps the bytes read through it, so that an answer parsed with net/http can be passed on exactly as
// it was read.
type recorder struct {
	r    io.Reader
	buf  []byte
	used int // bytes of buf handed out by take, dropped by done
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}

// take returns the bytes read so far except the last buffered ones (read ahead, belonging to the next
// answer). They stay valid until done.
func (r *recorder) take(buffered int) []byte {
	r.used = len(r.buf) - buffered
	return r.buf[:r.used]
}

// done drops what take returned.
func (r *recorder) done() {
	rest := copy(r.buf, r.buf[r.used:])
	r.buf = r.buf[:rest]
	r.used = 0
	if cap(r.buf) > 1<<20 && rest == 0 {
		// After a large event: do not keep megabytes for the life of the sandbox.
		r.buf = nil
	}
}
