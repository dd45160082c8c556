package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// Mirror mode (selective mode, a PLLDB_SESSIONS entry with "mirror"): a knocked invocation of a mirror session
// goes to the child at once, without its knock, and the deployed code answers the caller as it would without
// plldb. A copy goes to the developer over the session's link (an invoke with Mirror set; no ack is awaited), and
// when the child posts its answer for that request id the proxy sends the developer a deployed envelope with that
// answer exactly as posted, before the answer goes on to the Runtime API: Lambda freezes the sandbox once the
// runtime asks for its next invocation, so a send still in a buffer then could wait frozen until the next
// invocation thaws the sandbox. That send is waited for mirrorWait at most; the copy never holds the caller
// longer, and when the link is down or a send fails the copy is dropped with a log line.
//
// The child's requests are spliced unread (tcpRelay) except while a mirrored invocation handed out on that
// connection has not been answered: the connection's child → API copier then reads requests with net/http
// (recording their bytes, which go upstream exactly as read) until the answer is seen, and splices again after.

// mirrorWait bounds how long the child's answer to a mirrored invocation waits for the deployed envelope to be
// sent before it goes on to the Runtime API (and so to the caller).
const mirrorWait = 200 * time.Millisecond

// switchWait bounds how long handing out a mirrored invocation waits for the connection's copier to start
// reading requests. The copier is idle in a read of the child's socket then (the child waits for its
// invocation), which a past deadline ends at once, before any byte of the child's answer can be read: the
// deadline is set before the child is handed the invocation.
const switchWait = time.Second

// relayConn is selective mode's state of one relayed connection: the mirrored invocation the child was handed
// on it and has not answered yet, and which way the child → API copier is working.
type relayConn struct {
	child net.Conn

	mu      sync.Mutex
	pending *mirrorInv
	reading bool          // the copier reads requests instead of splicing them
	reads   chan struct{} // signalled when the copier starts reading
}

func newRelayConn(child net.Conn) *relayConn {
	return &relayConn{child: child, reads: make(chan struct{}, 1)}
}

// mirrorInv is one mirrored invocation: the copy for the developer and, once the child posted it, its answer.
type mirrorInv struct {
	inv    runtimeapi.Invocation // without the knock
	knock  *wire.KnockRef
	handed time.Time // when the child was handed the invocation
	// answer gets what the child posted; abandon is closed when it will never come (the child's answer was not
	// seen on this connection). finished is closed when the job is over: the deployed envelope sent, or dropped.
	answer   chan wire.Deployed
	abandon  chan struct{}
	once     sync.Once
	finished chan struct{}
}

func (m *mirrorInv) drop() { m.once.Do(func() { close(m.abandon) }) }

// arm makes the connection's copier read the child's requests until m's answer is seen. It reports false when
// the copier did not switch in time (m is then not pending, and the copy goes without the deployed answer).
func (c *relayConn) arm(m *mirrorInv) bool {
	c.mu.Lock()
	if prev := c.pending; prev != nil {
		prev.drop()
	}
	c.pending = m
	select {
	case <-c.reads: // a signal of an earlier switch nobody waited for
	default:
	}
	if c.reading {
		c.mu.Unlock()
		return true
	}
	// Ends the copier's splice, which is waiting for bytes the child will not send before it has this invocation.
	_ = c.child.SetReadDeadline(time.Unix(1, 0))
	c.mu.Unlock()
	t := time.NewTimer(switchWait)
	defer t.Stop()
	select {
	case <-c.reads:
		return true
	case <-t.C:
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.reading {
			// The copier switched as the timer fired: it reads requests with m pending and will see its answer.
			return true
		}
		if c.pending == m {
			c.pending = nil
		}
		return false
	}
}

// handOut notes that the child is handed a new invocation on this connection that is not mirrored: a mirrored
// one still pending was answered elsewhere, if at all.
func (c *relayConn) handOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != nil {
		c.pending.drop()
		c.pending = nil
	}
}

// take returns the pending mirrored invocation whose answer this request is, and stops it being pending.
func (c *relayConn) take(id string) *mirrorInv {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == nil || c.pending.inv.RequestID != id {
		return nil
	}
	m := c.pending
	c.pending = nil
	return m
}

// splicing switches the copier back to splicing when nothing is pending; it reports whether it did.
func (c *relayConn) splicing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != nil {
		return false
	}
	c.reading = false
	return true
}

// woken is the copier's answer to an ended splice (a read deadline): it clears the deadline and reports whether
// a mirrored invocation is pending, in which case the copier now reads requests.
func (c *relayConn) woken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.child.SetReadDeadline(time.Time{})
	if c.pending == nil {
		return false
	}
	c.reading = true
	select {
	case c.reads <- struct{}{}:
	default:
	}
	return true
}

// requests copies the child's requests to up until the child stops sending: spliced, or read (for mirror mode)
// while a mirrored invocation of this connection waits for its answer.
func (s *selector) requests(c *relayConn, up net.Conn) error {
	for {
		_, err := io.Copy(up, c.child)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if !c.woken() {
			continue
		}
		if err := s.readRequests(c, up); err != nil {
			return err
		}
	}
}

// readRequests reads the child's requests and passes each on exactly as read, sending the deployed envelope of a
// mirrored invocation's answer first. It returns nil when nothing is pending any more (the copier splices again),
// or an error when the connection is done.
func (s *selector) readRequests(c *relayConn, up net.Conn) error {
	rec := &recorder{r: c.child}
	br := bufio.NewReaderSize(rec, 64<<10)
	// giveUp passes on everything read (the reader's buffer included) and lets the copier splice the rest.
	giveUp := func(why string) error {
		s.dropPending(c, why)
		_ = c.splicing()
		if rest := rec.take(0); len(rest) > 0 {
			if _, err := up.Write(rest); err != nil {
				return fmt.Errorf("relay to the runtime api: %w", err)
			}
		}
		return nil
	}
	for {
		if br.Buffered() == 0 && c.splicing() {
			return nil
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			// Not HTTP as net/http reads it, or the child went away: the API gets what was read and meets it.
			if gerr := giveUp("the runtime's request could not be read"); gerr != nil {
				return gerr
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return io.EOF
			}
			return nil
		}
		if req.Header.Get("Expect") != "" {
			// The client waits for the API's 100 Continue before it sends the body: it cannot be read here first.
			return giveUp("the runtime's answer expects 100-continue")
		}
		// Requests are read whole (a Runtime API request is at most the 6 MB of an answer) and passed on as read.
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			if gerr := giveUp("the runtime's request was cut"); gerr != nil {
				return gerr
			}
			return fmt.Errorf("read the runtime's request: %w", err)
		}
		raw := rec.take(br.Buffered())
		if id, kind := answerPath(req); id != "" {
			if m := c.take(id); m != nil {
				d := wire.Deployed{
					RequestID:   id,
					Error:       kind == "error",
					Payload:     body,
					ContentType: req.Header.Get("Content-Type"),
					DurationMs:  time.Since(m.handed).Milliseconds(),
				}
				if d.Error {
					// Only an error has a type (wire.Deployed.Check refuses one on a response).
					d.ErrorType = req.Header.Get(runtimeapi.HeaderErrorType)
				}
				s.sendDeployed(m, d)
			}
		}
		if _, err := up.Write(raw); err != nil {
			return fmt.Errorf("relay to the runtime api: %w", err)
		}
		rec.done()
	}
}

// dropPending gives up on the connection's pending mirrored invocation.
func (s *selector) dropPending(c *relayConn, why string) {
	c.mu.Lock()
	m := c.pending
	c.pending = nil
	c.mu.Unlock()
	if m != nil {
		s.p.log.Warn("mirror: the deployed code's answer is not sent to the developer", "request_id", m.inv.RequestID, "reason", why)
		m.drop()
	}
}

// answerPath returns the request id and "response" or "error" of a runtime's answer to an invocation
// (POST /2018-06-01/runtime/invocation/{id}/response or /error); "" otherwise.
func answerPath(req *http.Request) (id, kind string) {
	if req.Method != http.MethodPost {
		return "", ""
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/"+runtimeapi.APIVersion+"/runtime/invocation/")
	if !ok {
		return "", ""
	}
	id, kind, ok = strings.Cut(rest, "/")
	if !ok || id == "" || (kind != "response" && kind != "error") {
		return "", ""
	}
	return id, kind
}

// sendDeployed hands the child's answer to m's job and waits up to mirrorWait for it to be sent.
func (s *selector) sendDeployed(m *mirrorInv, d wire.Deployed) {
	select {
	case m.answer <- d:
	default:
		return
	}
	t := time.NewTimer(mirrorWait)
	defer t.Stop()
	select {
	case <-m.finished:
	case <-t.C:
		s.p.log.Warn("mirror: the deployed answer is not sent yet; the caller gets it now and the developer later",
			"request_id", m.inv.RequestID, "waited", mirrorWait)
	}
}

// mirror hands a knocked invocation of a mirror session to the deployed code and starts its copy's job. The
// invocation the child gets is written by the caller right after.
func (s *selector) mirror(c *relayConn, l *selLink, inv runtimeapi.Invocation, ref *wire.KnockRef) {
	m := &mirrorInv{inv: inv, knock: ref, answer: make(chan wire.Deployed, 1), abandon: make(chan struct{}), finished: make(chan struct{})}
	if !s.start(l) {
		return
	}
	if !c.arm(m) {
		s.p.log.Warn("mirror: the runtime's answer cannot be followed on this connection; the developer gets the copy alone",
			"request_id", inv.RequestID)
		m.drop()
	}
	m.handed = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(m.finished)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(m.finished)
		s.mirrorJob(l.sess, m)
	}()
}

// mirrorJob sends m's copy and then, once the child answered, the deployed envelope, in that order, over sess's
// link. Nothing waits for an ack; a link that is down or a failed send drops what is left, with a log line.
func (s *selector) mirrorJob(sess *session, m *mirrorInv) {
	ctx := s.linkCtx
	id := m.inv.RequestID
	wait := sess.cfg.ConnectWait
	if wait <= 0 {
		wait = DefaultConnectWait
	}
	t := time.NewTimer(wait)
	select {
	case <-sess.linked:
		t.Stop()
	case <-t.C:
		s.p.log.Warn("mirror: copy dropped: the plldb relay could not be reached in time", "request_id", id, "session", sess.cfg.SessionID)
		return
	case <-ctx.Done():
		t.Stop()
		return
	}
	link := sess.currentLink()
	send := func(e *wire.Envelope) error {
		if !link.Connected() {
			return errors.New("the relay link is down")
		}
		sctx, cancel := context.WithTimeout(ctx, sess.cfg.AckTimeout)
		defer cancel()
		return link.Send(sctx, e)
	}
	env, err := sess.invokeEnvelope(m.inv, m.knock, true)
	if err == nil {
		err = send(env)
	}
	if err != nil {
		s.p.log.Warn("mirror: copy dropped", "request_id", id, "session", sess.cfg.SessionID, "err", err)
		return
	}
	s.p.log.Info("mirror: copy sent to the developer", "request_id", id, "session", sess.cfg.SessionID)
	var d wire.Deployed
	select {
	case d = <-m.answer:
	case <-m.abandon:
		return
	case <-ctx.Done():
		return
	}
	e, err := wire.NewEnvelope(wire.TypeDeployed, id, d)
	if err == nil {
		err = send(e)
	}
	if err != nil {
		s.p.log.Warn("mirror: the deployed answer was not sent to the developer", "request_id", id, "session", sess.cfg.SessionID, "err", err)
	}
}
