// Package daptest is a Debug Adapter Protocol client for tests: it speaks Content-Length framed DAP over any
// io.ReadWriteCloser and offers Expect… helpers that wait (with a timeout) for the message a test needs next.
//
// Unlike a strictly ordered client, messages that do not match what a test waits for are kept, not dropped: a
// proxy that fans requests out to several debuggees delivers events in an order that depends on scheduling, so
// an Expect call looks through everything received so far before waiting for more.
package daptest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-dap"
)

// Message is one DAP message as received: the common fields decoded, Raw the whole JSON text.
type Message struct {
	Seq        int             `json:"seq"`
	Type       string          `json:"type"`
	Command    string          `json:"command"`
	Event      string          `json:"event"`
	RequestSeq int             `json:"request_seq"`
	Success    bool            `json:"success"`
	Message    string          `json:"message"`
	Body       json.RawMessage `json:"body"`
	Arguments  json.RawMessage `json:"arguments"`
	Raw        []byte          `json:"-"`
}

// Decode decodes the body into v.
func (m Message) Decode(v any) error {
	if len(m.Body) == 0 {
		return fmt.Errorf("%s %s%s has no body", m.Type, m.Command, m.Event)
	}
	return json.Unmarshal(m.Body, v)
}

// BodyMap is the body as a generic map (nil when there is none).
func (m Message) BodyMap() map[string]any {
	var out map[string]any
	_ = json.Unmarshal(m.Body, &out)
	return out
}

func (m Message) String() string { return string(m.Raw) }

// DefaultTimeout bounds every Expect call unless Client.Timeout is set.
const DefaultTimeout = 60 * time.Second

// Client is a DAP client. Send and the Expect helpers are safe for concurrent use.
type Client struct {
	// Timeout bounds each Expect call; 0 means DefaultTimeout.
	Timeout time.Duration

	rw io.ReadWriteCloser
	wm sync.Mutex
	sq int

	mu      sync.Mutex
	backlog []Message
	history []Message     // every message received, in order
	arrived chan struct{} // closed and replaced whenever a message arrives or the reader ends
	readErr error
	done    chan struct{}
}

// New starts a client on rw; Close (or the end of rw) stops its reader.
func New(rw io.ReadWriteCloser) *Client {
	c := &Client{rw: rw, arrived: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	return c
}

// NewT is New with the client closed (and its reader waited for) when the test ends.
func NewT(t testing.TB, rw io.ReadWriteCloser) *Client {
	c := New(rw)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Close closes the connection and waits for the reader.
func (c *Client) Close() error {
	err := c.rw.Close()
	<-c.done
	return err
}

// Done is closed once the connection has ended (the adapter closed it or Close was called).
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) read() {
	defer close(c.done)
	br := bufio.NewReader(c.rw)
	for {
		raw, err := dap.ReadBaseMessage(br)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			close(c.arrived)
			c.arrived = make(chan struct{})
			c.mu.Unlock()
			return
		}
		var m Message
		if err := json.Unmarshal(raw, &m); err != nil {
			m = Message{Type: "invalid", Message: err.Error()}
		}
		m.Raw = raw
		c.mu.Lock()
		c.backlog = append(c.backlog, m)
		c.history = append(c.history, m)
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
	}
}

// Send sends a request and returns its seq.
func (c *Client) Send(command string, args any) (int, error) {
	c.wm.Lock()
	defer c.wm.Unlock()
	c.sq++
	msg := map[string]any{"seq": c.sq, "type": "request", "command": command}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return 0, fmt.Errorf("encode %s request: %w", command, err)
	}
	// One write per frame (go-dap's WriteBaseMessage writes the header and the body separately).
	frame := append([]byte("Content-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"), b...)
	if _, err := c.rw.Write(frame); err != nil {
		return 0, fmt.Errorf("send %s request: %w", command, err)
	}
	return c.sq, nil
}

// SendRaw writes content as one framed message, as is.
func (c *Client) SendRaw(content []byte) error {
	c.wm.Lock()
	defer c.wm.Unlock()
	return dap.WriteBaseMessage(c.rw, content)
}

// Next waits for the first message (oldest first, including ones received earlier and not yet taken) for which
// match is true, and takes it.
func (c *Client) Next(what string, match func(Message) bool) (Message, error) {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		c.mu.Lock()
		for i := seen; i < len(c.backlog); i++ {
			if m := c.backlog[i]; match(m) {
				c.backlog = append(c.backlog[:i:i], c.backlog[i+1:]...)
				c.mu.Unlock()
				return m, nil
			}
		}
		seen = len(c.backlog)
		arrived, readErr := c.arrived, c.readErr
		c.mu.Unlock()
		if readErr != nil {
			return Message{}, fmt.Errorf("waiting for %s: connection ended: %w", what, readErr)
		}
		select {
		case <-arrived:
		case <-deadline.C:
			return Message{}, fmt.Errorf("no %s within %s; unclaimed messages: %s", what, timeout, c.pending())
		}
	}
}

func (c *Client) pending() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, m := range c.backlog {
		s := string(m.Raw)
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		b.WriteString("\n  " + s)
	}
	return b.String()
}

// History returns every message received so far, in order, taken or not.
func (c *Client) History() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.history...)
}

// Drain takes every message received so far.
func (c *Client) Drain() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.backlog
	c.backlog = nil
	return out
}

// IsResponse matches the response to request seq.
func IsResponse(seq int) func(Message) bool {
	return func(m Message) bool { return m.Type == "response" && m.RequestSeq == seq }
}

// IsEvent matches events by name.
func IsEvent(name string) func(Message) bool {
	return func(m Message) bool { return m.Type == "event" && m.Event == name }
}

// --- testing helpers: each fails the test on error ---------------------------------------------------------

// Expect waits for a matching message.
func (c *Client) Expect(t testing.TB, what string, match func(Message) bool) Message {
	t.Helper()
	m, err := c.Next(what, match)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// MustSend sends a request and returns its seq.
func (c *Client) MustSend(t testing.TB, command string, args any) int {
	t.Helper()
	seq, err := c.Send(command, args)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// Request sends a request and waits for its response, which must be successful.
func (c *Client) Request(t testing.TB, command string, args any) Message {
	t.Helper()
	seq := c.MustSend(t, command, args)
	m := c.Expect(t, command+" response", IsResponse(seq))
	if !m.Success || m.Command != command {
		t.Fatalf("%s failed: %s", command, m.Raw)
	}
	return m
}

// RequestError sends a request and waits for its response, which must be an error; it returns the message.
func (c *Client) RequestError(t testing.TB, command string, args any) Message {
	t.Helper()
	seq := c.MustSend(t, command, args)
	m := c.Expect(t, command+" response", IsResponse(seq))
	if m.Success {
		t.Fatalf("%s succeeded, want an error: %s", command, m.Raw)
	}
	return m
}

// ErrorText is the text of an error response: the formatted body.error, else message.
func (m Message) ErrorText() string {
	var b struct {
		Error struct {
			Format string `json:"format"`
		} `json:"error"`
	}
	if json.Unmarshal(m.Body, &b) == nil && b.Error.Format != "" {
		return b.Error.Format
	}
	return m.Message
}

// ExpectInitializeResponse sends initialize with the arguments VS Code sends and returns the capabilities.
func (c *Client) ExpectInitializeResponse(t testing.TB) map[string]any {
	t.Helper()
	m := c.Request(t, "initialize", map[string]any{
		"clientID": "daptest", "adapterID": "plldb", "linesStartAt1": true, "columnsStartAt1": true,
		"pathFormat": "path", "supportsVariableType": true, "supportsRunInTerminalRequest": false,
		"supportsProgressReporting": true,
	})
	return m.BodyMap()
}

// ExpectEvent waits for an event by name.
func (c *Client) ExpectEvent(t testing.TB, name string) Message {
	t.Helper()
	return c.Expect(t, name+" event", IsEvent(name))
}

// ExpectInitializedEvent waits for the initialized event.
func (c *Client) ExpectInitializedEvent(t testing.TB) Message {
	t.Helper()
	return c.ExpectEvent(t, "initialized")
}

// StoppedEvent is the body of a stopped event.
type StoppedEvent struct {
	Reason            string `json:"reason"`
	Description       string `json:"description"`
	ThreadID          int    `json:"threadId"`
	AllThreadsStopped bool   `json:"allThreadsStopped"`
	HitBreakpointIDs  []int  `json:"hitBreakpointIds"`
	Text              string `json:"text"`
	PreserveFocusHint bool   `json:"preserveFocusHint"`
}

// ExpectStoppedEvent waits for a stopped event.
func (c *Client) ExpectStoppedEvent(t testing.TB) StoppedEvent {
	t.Helper()
	m := c.Expect(t, "stopped event", IsEvent("stopped"))
	var b StoppedEvent
	if err := m.Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// ExpectStoppedEventReason waits for a stopped event with this reason.
func (c *Client) ExpectStoppedEventReason(t testing.TB, reason string) StoppedEvent {
	t.Helper()
	st := c.ExpectStoppedEvent(t)
	if st.Reason != reason {
		t.Fatalf("stopped for %q, want %q (%+v)", st.Reason, reason, st)
	}
	return st
}

// ExpectOutputEventContaining waits for an output event whose text contains s and returns its text.
func (c *Client) ExpectOutputEventContaining(t testing.TB, s string) string {
	t.Helper()
	m := c.Expect(t, fmt.Sprintf("output event containing %q", s), func(m Message) bool {
		if m.Type != "event" || m.Event != "output" {
			return false
		}
		var b struct {
			Output string `json:"output"`
		}
		return json.Unmarshal(m.Body, &b) == nil && strings.Contains(b.Output, s)
	})
	var b struct {
		Output string `json:"output"`
	}
	_ = m.Decode(&b)
	return b.Output
}

// Frame is a stack frame as the tests read it.
type Frame struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	Line   int    `json:"line"`
	Source struct {
		Path            string `json:"path"`
		SourceReference int    `json:"sourceReference"`
	} `json:"source"`
}

// StackTrace requests the stack of a thread.
func (c *Client) StackTrace(t testing.TB, threadID int) []Frame {
	t.Helper()
	var b struct {
		StackFrames []Frame `json:"stackFrames"`
	}
	if err := c.Request(t, "stackTrace", map[string]any{"threadId": threadID}).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b.StackFrames
}

// Variable is a variable as the tests read it.
type Variable struct {
	Name               string `json:"name"`
	Value              string `json:"value"`
	Type               string `json:"type"`
	VariablesReference int    `json:"variablesReference"`
}

// Locals returns the variables of the first scope ("Locals" for debugpy) of a frame, by name.
func (c *Client) Locals(t testing.TB, frameID int) map[string]Variable {
	t.Helper()
	var scopes struct {
		Scopes []struct {
			Name               string `json:"name"`
			VariablesReference int    `json:"variablesReference"`
		} `json:"scopes"`
	}
	if err := c.Request(t, "scopes", map[string]any{"frameId": frameID}).Decode(&scopes); err != nil {
		t.Fatal(err)
	}
	if len(scopes.Scopes) == 0 {
		t.Fatal("frame has no scopes")
	}
	return c.Variables(t, scopes.Scopes[0].VariablesReference)
}

// Variables lists a variables reference, by name.
func (c *Client) Variables(t testing.TB, ref int) map[string]Variable {
	t.Helper()
	var vars struct {
		Variables []Variable `json:"variables"`
	}
	if err := c.Request(t, "variables", map[string]any{"variablesReference": ref}).Decode(&vars); err != nil {
		t.Fatal(err)
	}
	out := map[string]Variable{}
	for _, v := range vars.Variables {
		out[v.Name] = v
	}
	return out
}

// Evaluate evaluates an expression in a frame and returns the result text.
func (c *Client) Evaluate(t testing.TB, frameID int, expr string) string {
	t.Helper()
	var b struct {
		Result string `json:"result"`
	}
	if err := c.Request(t, "evaluate", map[string]any{"frameId": frameID, "expression": expr, "context": "repl"}).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Result
}
