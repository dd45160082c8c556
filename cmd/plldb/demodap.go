package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/plldb/plldb/adapter/dap"
	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/testfixtures/apps"
)

// demoDebug runs a scripted debug session against the adapter, as an IDE would: it sets a breakpoint in the
// hello handler, invokes the function, and prints the stack and the locals where it stopped.
func demoDebug(ctx context.Context, w io.Writer, template, python string, log *slog.Logger) error {
	template, err := filepath.Abs(template)
	if err != nil {
		return err
	}
	file := filepath.Join(filepath.Dir(template), "src", "app.py")
	line, err := apps.BreakpointLine(file, "handler")
	if err != nil {
		return err
	}
	l, err := dap.Listen("127.0.0.1:0", dap.Options{Logger: log})
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- l.Serve(sctx) }()
	defer func() {
		stop()
		<-served
	}()
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	c := daptest.New(conn)
	c.Timeout = 60 * time.Second
	defer c.Close()

	fmt.Fprintf(w, "\n$ plldb dap   # scripted DAP client: breakpoint at %s:%d\n", filepath.Base(file), line)
	request := func(command string, args any) (daptest.Message, error) {
		seq, err := c.Send(command, args)
		if err != nil {
			return daptest.Message{}, err
		}
		m, err := c.Next(command+" response", daptest.IsResponse(seq))
		if err == nil && !m.Success {
			err = fmt.Errorf("%s: %s", command, m.ErrorText())
		}
		return m, err
	}
	if _, err := request("initialize", map[string]any{"clientID": "plldb-demo", "adapterID": "plldb", "linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"}); err != nil {
		return err
	}
	launchArgs := map[string]any{"mode": "local", "template": template, "invokePort": 0, "functions": []string{"HelloFunction"}}
	if python != "" {
		launchArgs["python"] = python
	}
	start := time.Now()
	if _, err := request("launch", launchArgs); err != nil {
		return err
	}
	out, err := c.Next("Invoke API output", func(m daptest.Message) bool {
		return m.Event == "output" && strings.Contains(string(m.Body), "Invoke API at ")
	})
	if err != nil {
		return err
	}
	var ob struct {
		Output string `json:"output"`
	}
	_ = out.Decode(&ob)
	_, endpoint, _ := strings.Cut(strings.TrimSpace(ob.Output), "Invoke API at ")
	fmt.Fprintf(w, "launched in %s: %s", time.Since(start).Round(time.Millisecond), ob.Output)
	if _, err := c.Next("initialized event", daptest.IsEvent("initialized")); err != nil {
		return err
	}
	if _, err := request("setBreakpoints", map[string]any{"source": map[string]any{"path": file}, "breakpoints": []map[string]any{{"line": line}}}); err != nil {
		return err
	}
	if _, err := request("configurationDone", nil); err != nil {
		return err
	}

	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/2015-03-31/functions/HelloFunction/invocations", strings.NewReader(`{"name": "plldb", "debug": true}`))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{string(b), err}
	}()
	fmt.Fprintln(w, "invoked HelloFunction {\"name\": \"plldb\", \"debug\": true}")

	stopped, err := c.Next("stopped event", daptest.IsEvent("stopped"))
	if err != nil {
		return err
	}
	var st daptest.StoppedEvent
	if err := stopped.Decode(&st); err != nil {
		return err
	}
	fmt.Fprintf(w, "stopped: %s (thread %d)\n", st.Reason, st.ThreadID)
	m, err := request("threads", nil)
	if err != nil {
		return err
	}
	var threads struct {
		Threads []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"threads"`
	}
	_ = m.Decode(&threads)
	for _, t := range threads.Threads {
		if t.ID == st.ThreadID {
			fmt.Fprintf(w, "thread %d: %s\n", t.ID, t.Name)
		}
	}
	m, err = request("stackTrace", map[string]any{"threadId": st.ThreadID})
	if err != nil {
		return err
	}
	var stack struct {
		StackFrames []daptest.Frame `json:"stackFrames"`
	}
	if err := m.Decode(&stack); err != nil || len(stack.StackFrames) == 0 {
		return errors.Join(errors.New("no stack frames"), err)
	}
	fmt.Fprintln(w, "stack:")
	for _, f := range stack.StackFrames {
		fmt.Fprintf(w, "  %-12s %s:%d\n", f.Name, shortPath(f.Source.Path), f.Line)
	}
	m, err = request("scopes", map[string]any{"frameId": stack.StackFrames[0].ID})
	if err != nil {
		return err
	}
	var scopes struct {
		Scopes []struct {
			Name               string `json:"name"`
			VariablesReference int    `json:"variablesReference"`
		} `json:"scopes"`
	}
	if err := m.Decode(&scopes); err != nil || len(scopes.Scopes) == 0 {
		return errors.Join(errors.New("no scopes"), err)
	}
	m, err = request("variables", map[string]any{"variablesReference": scopes.Scopes[0].VariablesReference})
	if err != nil {
		return err
	}
	var vars struct {
		Variables []daptest.Variable `json:"variables"`
	}
	_ = m.Decode(&vars)
	fmt.Fprintf(w, "%s:\n", strings.ToLower(scopes.Scopes[0].Name))
	for _, v := range vars.Variables {
		if strings.HasPrefix(v.Name, "special variables") || strings.HasPrefix(v.Name, "function variables") {
			continue
		}
		fmt.Fprintf(w, "  %-8s = %s\n", v.Name, v.Value)
	}
	m, err = request("evaluate", map[string]any{"expression": "context.function_name", "frameId": stack.StackFrames[0].ID, "context": "repl"})
	if err != nil {
		return err
	}
	var ev struct {
		Result string `json:"result"`
	}
	_ = m.Decode(&ev)
	fmt.Fprintf(w, "evaluate context.function_name → %s\n", ev.Result)
	if _, err := request("continue", map[string]any{"threadId": st.ThreadID}); err != nil {
		return err
	}
	select {
	case a := <-answered:
		if a.err != nil {
			return a.err
		}
		fmt.Fprintf(w, "continued; the caller got: %s\n", a.body)
	case <-time.After(60 * time.Second):
		return errors.New("no answer after continue")
	}
	if _, err := request("disconnect", nil); err != nil {
		return err
	}
	return nil
}

func shortPath(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}
