package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-dap"

	"github.com/plldb/plldb/testfixtures/apps"
)

// debugSession runs `plldb dap --listen` and drives it as an IDE would: it launches the hello app in local
// mode, sets a breakpoint in its handler, invokes the function, prints the thread, stack, locals and an
// evaluation where it stopped, continues, and prints what the caller got.
func debugSession(ctx context.Context, out *output, stderr io.Writer, c config) error {
	file := filepath.Join(filepath.Dir(c.template), "src", "app.py")
	line, err := apps.BreakpointLine(file, "handler")
	if err != nil {
		return err
	}
	p, err := start(ctx, out, stderr, c.plldb, "dap", "--listen", "127.0.0.1:0", "--log-level", c.logLevel)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = p.stop()
		}
	}()
	listening, err := p.waitFor(0, "DAP server listening at: ", 30*time.Second)
	if err != nil {
		return fmt.Errorf("plldb dap: %w", err)
	}
	addr := strings.TrimPrefix(listening, "DAP server listening at: ")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { _ = conn.Close() })()
	cl := &client{conn: conn, r: bufio.NewReader(conn)}
	out.printf("(a scripted DAP client connects and sets a breakpoint at %s:%d)\n", shortPath(file), line)

	if _, err := call[*dap.InitializeResponse](cl, &dap.InitializeRequest{Arguments: dap.InitializeRequestArguments{
		ClientID: "plldb-demo", AdapterID: "plldb", LinesStartAt1: true, ColumnsStartAt1: true, PathFormat: "path",
	}}, "initialize"); err != nil {
		return err
	}
	launch := map[string]any{"mode": "local", "template": c.template, "invokePort": 0, "functions": []string{"HelloFunction"}}
	if c.python != "" {
		launch["python"] = c.python
	}
	launchArgs, err := json.Marshal(launch)
	if err != nil {
		return err
	}
	began := time.Now()
	if _, err := call[*dap.LaunchResponse](cl, &dap.LaunchRequest{Arguments: launchArgs}, "launch"); err != nil {
		return err
	}
	// Just before answering the launch, plldb says where the Invoke API listens.
	announced, err := event(cl, func(e *dap.OutputEvent) bool { return strings.Contains(e.Body.Output, "Invoke API at ") })
	if err != nil {
		return err
	}
	_, endpoint, _ := strings.Cut(strings.TrimSpace(announced.Body.Output), "Invoke API at ")
	out.printf("launched in %s: %s\n", time.Since(began).Round(time.Millisecond), strings.TrimSpace(announced.Body.Output))
	if _, err := event[*dap.InitializedEvent](cl, nil); err != nil {
		return err
	}
	if _, err := call[*dap.SetBreakpointsResponse](cl, &dap.SetBreakpointsRequest{Arguments: dap.SetBreakpointsArguments{
		Source: dap.Source{Path: file}, Breakpoints: []dap.SourceBreakpoint{{Line: line}},
	}}, "setBreakpoints"); err != nil {
		return err
	}
	if _, err := call[*dap.ConfigurationDoneResponse](cl, &dap.ConfigurationDoneRequest{}, "configurationDone"); err != nil {
		return err
	}

	const payload = `{"name": "plldb", "debug": true}`
	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		body, err := post(ctx, endpoint+"/2015-03-31/functions/HelloFunction/invocations", payload)
		answered <- answer{body, err}
	}()
	out.printf("invoked HelloFunction %s\n", payload)

	stop, err := event[*dap.StoppedEvent](cl, nil)
	if err != nil {
		return err
	}
	thread := stop.Body.ThreadId
	out.printf("stopped: %s (thread %d)\n", stop.Body.Reason, thread)
	threads, err := call[*dap.ThreadsResponse](cl, &dap.ThreadsRequest{}, "threads")
	if err != nil {
		return err
	}
	for _, t := range threads.Body.Threads {
		if t.Id == thread {
			out.printf("thread %d: %s\n", t.Id, t.Name)
		}
	}
	stack, err := call[*dap.StackTraceResponse](cl, &dap.StackTraceRequest{Arguments: dap.StackTraceArguments{ThreadId: thread}}, "stackTrace")
	if err != nil {
		return err
	}
	if len(stack.Body.StackFrames) == 0 {
		return errors.New("stackTrace: no frames")
	}
	out.printf("stack:\n")
	for _, f := range stack.Body.StackFrames {
		where := "?"
		if f.Source != nil {
			where = shortPath(f.Source.Path)
		}
		out.printf("  %-12s %s:%d\n", f.Name, where, f.Line)
	}
	top := stack.Body.StackFrames[0].Id
	scopes, err := call[*dap.ScopesResponse](cl, &dap.ScopesRequest{Arguments: dap.ScopesArguments{FrameId: top}}, "scopes")
	if err != nil {
		return err
	}
	if len(scopes.Body.Scopes) == 0 {
		return errors.New("scopes: none")
	}
	locals := scopes.Body.Scopes[0]
	vars, err := call[*dap.VariablesResponse](cl, &dap.VariablesRequest{Arguments: dap.VariablesArguments{VariablesReference: locals.VariablesReference}}, "variables")
	if err != nil {
		return err
	}
	out.printf("%s:\n", strings.ToLower(locals.Name))
	for _, v := range vars.Body.Variables {
		// debugpy's groups of dunder and function attributes say nothing about the handler.
		if strings.HasPrefix(v.Name, "special variables") || strings.HasPrefix(v.Name, "function variables") {
			continue
		}
		out.printf("  %-8s = %s\n", v.Name, v.Value)
	}
	ev, err := call[*dap.EvaluateResponse](cl, &dap.EvaluateRequest{Arguments: dap.EvaluateArguments{
		Expression: "context.function_name", FrameId: top, Context: "repl",
	}}, "evaluate")
	if err != nil {
		return err
	}
	out.printf("evaluate context.function_name → %s\n", ev.Body.Result)
	if _, err := call[*dap.ContinueResponse](cl, &dap.ContinueRequest{Arguments: dap.ContinueArguments{ThreadId: thread}}, "continue"); err != nil {
		return err
	}
	select {
	case a := <-answered:
		if a.err != nil {
			return a.err
		}
		out.printf("continued; the caller got: %s\n", a.body)
	case <-time.After(60 * time.Second):
		return errors.New("no answer within 60s of continue")
	}
	if _, err := call[*dap.DisconnectResponse](cl, &dap.DisconnectRequest{}, "disconnect"); err != nil {
		return err
	}
	out.printf("^C\n")
	stopped = true
	if err := p.stop(); err != nil {
		return fmt.Errorf("stop plldb dap: %w", err)
	}
	return nil
}

func post(ctx context.Context, url, payload string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(payload))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
	}
	return string(body), err
}

// client is a minimal DAP client: one request at a time, events kept until asked for.
type client struct {
	conn    net.Conn
	r       *bufio.Reader
	seq     int
	pending []dap.Message // events that arrived while waiting for something else
}

// read returns the next message this client can decode, skipping events and responses go-dap does not know
// (debugpy and plldb send a few of their own).
func (c *client) read() (dap.Message, error) {
	for {
		if err := c.conn.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
			return nil, err
		}
		m, err := dap.ReadProtocolMessage(c.r)
		var unknown *dap.DecodeProtocolMessageFieldError
		if errors.As(err, &unknown) {
			continue
		}
		return m, err
	}
}

// call sends a request and returns its successful response; an error response becomes an error.
func call[R dap.ResponseMessage](c *client, req dap.RequestMessage, command string) (R, error) {
	var zero R
	c.seq++
	r := req.GetRequest()
	r.Seq, r.Type, r.Command = c.seq, "request", command
	if err := dap.WriteProtocolMessage(c.conn, req); err != nil {
		return zero, fmt.Errorf("%s: %w", command, err)
	}
	for {
		m, err := c.read()
		if err != nil {
			return zero, fmt.Errorf("%s: %w", command, err)
		}
		resp, ok := m.(dap.ResponseMessage)
		if !ok {
			if _, isEvent := m.(dap.EventMessage); isEvent {
				c.pending = append(c.pending, m)
			}
			continue
		}
		if resp.GetResponse().RequestSeq != r.Seq {
			continue
		}
		if er, ok := m.(*dap.ErrorResponse); ok {
			msg := er.Message
			if er.Body.Error != nil {
				msg = er.Body.Error.Format
			}
			return zero, fmt.Errorf("%s: %s", command, msg)
		}
		typed, ok := m.(R)
		if !ok {
			return zero, fmt.Errorf("%s: unexpected response %T", command, m)
		}
		return typed, nil
	}
}

// event waits for an event of type E that match accepts (nil: any), first among those already received.
func event[E dap.EventMessage](c *client, match func(E) bool) (E, error) {
	for i, m := range c.pending {
		if e, ok := m.(E); ok && (match == nil || match(e)) {
			c.pending = slices.Delete(c.pending, i, i+1)
			return e, nil
		}
	}
	for {
		m, err := c.read()
		if err != nil {
			var zero E
			return zero, fmt.Errorf("waiting for %T: %w", zero, err)
		}
		if e, ok := m.(E); ok && (match == nil || match(e)) {
			return e, nil
		}
		if _, isEvent := m.(dap.EventMessage); isEvent {
			c.pending = append(c.pending, m)
		}
	}
}
