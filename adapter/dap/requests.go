package dap

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	godap "github.com/google/go-dap"
)

// handle serves one request; true ends the session. A panic while serving it is answered with an error
// response and logged, and the session goes on (Delve's recoverPanic): one bad request must not cost the
// developer every paused invocation.
func (s *session) handle(req request) (end bool) {
	defer s.recoverPanic(req)
	s.log.Debug("request", "command", req.command, "seq", req.seq)
	if s.opts.requestHook != nil {
		s.opts.requestHook(req.command)
	}
	switch req.command {
	case "initialize":
		s.mu.Lock()
		s.initArgs = req.args
		s.mu.Unlock()
		var a struct {
			SupportsProgressReporting bool `json:"supportsProgressReporting"`
		}
		_ = json.Unmarshal(req.args, &a)
		s.progress = a.SupportsProgressReporting
		s.sendMsg(&godap.InitializeResponse{Response: s.newResponse(req), Body: capabilities()})
	case "launch":
		s.launch(req)
	case "attach":
		s.attachRequest(req)
	case "configurationDone":
		s.configured()
		s.ack(req)
		s.mu.Lock()
		attached := s.shared != nil
		s.mu.Unlock()
		if attached {
			s.announcePaused()
		}
	case "setBreakpoints":
		s.setBreakpoints(req)
	case "setFunctionBreakpoints":
		s.mu.Lock()
		s.fnBps = req.args
		s.mu.Unlock()
		s.broadcastConfig(req)
	case "setExceptionBreakpoints":
		s.mu.Lock()
		s.excBps = req.args
		s.mu.Unlock()
		s.broadcastConfig(req)
	case "threads":
		s.threadsRequest(req)
	case "modules":
		s.modulesRequest(req)
	case "continue", "next", "stepIn", "stepOut", "pause", "stackTrace", "scopes", "variables", "setVariable",
		"evaluate", "setExpression", "completions", "exceptionInfo", "source", "stepInTargets", "gotoTargets",
		"goto", "breakpointLocations", "debugpySystemInfo":
		s.forward(req)
	case "plldbKnock":
		s.knockRequest(req)
	case "plldbFunctions":
		s.functionsRequest(req)
	case "disconnect", "terminate":
		s.shutdown(req.command == "terminate")
		s.ack(req)
		if req.command == "terminate" {
			s.sendMsg(&godap.TerminatedEvent{Event: s.newEvent("terminated")})
			return false
		}
		return true
	default:
		s.respondErr(req, "plldb does not support the %q request", req.command)
	}
	return false
}

// recoverPanic answers a request whose handling panicked with an error response and logs the panic. If the
// request was answered before the panic the IDE gets a second answer, which it ignores; the log keeps the bug.
func (s *session) recoverPanic(req request) {
	if v := recover(); v != nil {
		s.log.Error("recovered from a panic while serving a request", "command", req.command, "seq", req.seq, "panic", v, "stack", string(debug.Stack()))
		s.respondErr(req, "%s: internal error in plldb: %v", req.command, v)
	}
}

// resumes are the requests that let a paused thread run.
var resumes = map[string]bool{"continue": true, "next": true, "stepIn": true, "stepOut": true}

// onStoppedThread are the requests debugpy can only serve for a paused thread.
var onStoppedThread = map[string]bool{"stackTrace": true, "exceptionInfo": true, "stepInTargets": true, "goto": true}

// resumeTimeout is how long a resume waits for debugpy's answer before the adapter answers it.
const resumeTimeout = 5 * time.Second

func capabilities() godap.Capabilities {
	return godap.Capabilities{
		SupportsConfigurationDoneRequest:  true,
		SupportsConditionalBreakpoints:    true,
		SupportsHitConditionalBreakpoints: true,
		SupportsEvaluateForHovers:         true,
		SupportsSetVariable:               true,
		SupportsGotoTargetsRequest:        true,
		SupportsCompletionsRequest:        true,
		SupportsModulesRequest:            true,
		SupportsExceptionOptions:          true,
		SupportsValueFormattingOptions:    true,
		SupportsExceptionInfoRequest:      true,
		SupportTerminateDebuggee:          true,
		SupportsDelayedStackTraceLoading:  true,
		SupportsLogPoints:                 true,
		SupportsSetExpression:             true,
		SupportsTerminateRequest:          true,
		SupportsClipboardContext:          true,
		SupportsFunctionBreakpoints:       true,
		SupportsStepInTargetsRequest:      true,
		ExceptionBreakpointFilters: []godap.ExceptionBreakpointsFilter{
			{Filter: "raised", Label: "Raised Exceptions", Default: false},
			{Filter: "uncaught", Label: "Uncaught Exceptions", Default: true},
			{Filter: "userUnhandled", Label: "User Uncaught Exceptions", Default: false},
		},
	}
}

func (s *session) current() []*debuggee {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*debuggee, 0, len(s.debuggees))
	for _, d := range s.debuggees {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].fn != out[j].fn {
			return out[i].fn < out[j].fn
		}
		return out[i].sandbox < out[j].sandbox
	})
	return out
}

// threadArg is the IDE thread a request's threadId names.
func (s *session) threadArg(req request) (ideThread, error) {
	var a struct {
		ThreadID *int `json:"threadId"`
	}
	if err := json.Unmarshal(req.args, &a); err != nil || a.ThreadID == nil {
		return ideThread{}, fmt.Errorf("%s needs a threadId", req.command)
	}
	t, ok := s.threads.lookup(*a.ThreadID)
	if !ok {
		return ideThread{}, fmt.Errorf("%s: unknown threadId %d (its invocation may have finished)", req.command, *a.ThreadID)
	}
	return t, nil
}

// forward routes a request to the debuggee its ids name (or, naming none, the one that stopped last, else the
// first function by name). Requests for a thread first check what the IDE knows of it: resumes and stack
// requests need it paused, and a resume marks it running before debugpy hears of it, so that debugpy's
// continued event is not echoed (DAP sends continued only for resumes no request implied).
func (s *session) forward(req request) {
	tg, args, err := s.fromIDE(req.args)
	if err != nil {
		s.respondErr(req, "%s: %v", req.command, err)
		return
	}
	var t ideThread
	if resumes[req.command] || onStoppedThread[req.command] || req.command == "pause" {
		if t, err = s.threadArg(req); err != nil {
			s.respondErr(req, "%v", err)
			return
		}
		switch {
		case req.command == "pause" && t.stopped:
			s.ack(req) // already paused
			return
		case req.command == "continue" && !t.stopped:
			// Nothing to resume: the thread runs (another request resumed it, or it never stopped).
			s.sendMsg(&godap.ContinueResponse{Response: s.newResponse(req), Body: godap.ContinueResponseBody{AllThreadsContinued: !s.threads.anyStopped()}})
			return
		case req.command != "pause" && !t.stopped:
			s.respondErr(req, "%s: thread %d (%s) is running; pause it or wait for it to stop", req.command, t.id, threadName(t.d.fn, t.d.sandbox, t.name))
			return
		}
		if resumes[req.command] {
			s.threads.setStopped(t.id, false)
			s.resetHandles(t.id)
		}
		if req.command == "continue" {
			// debugpy's continue resumes every thread of the process unless singleThread is set: without it a
			// continue would release the other paused invocations of the same function (see threads.go).
			if o, err := parseObj(args); err == nil {
				o.set("singleThread", true)
				args = o.bytes()
			}
		}
	}
	d := tg.d
	if d == nil {
		s.mu.Lock()
		d = s.lastStop
		s.mu.Unlock()
		if d == nil {
			if all := s.current(); len(all) > 0 {
				d = all[0]
			}
		}
	}
	if d == nil {
		s.respondErr(req, "%s: no function is being debugged", req.command)
		return
	}
	// The response is relayed from the debuggee's reader: the request reader moves on at once, and no goroutine
	// sits between debugpy's answer and the IDE.
	var once sync.Once
	var timer *time.Timer
	answer := func(resp obj, ok bool) {
		once.Do(func() {
			defer s.recoverPanic(req)
			if timer != nil {
				timer.Stop()
			}
			switch {
			case !ok:
				s.respondErr(req, "%s of %s: %v", req.command, d.fn, errDebuggeeGone)
			case resp == nil:
				// debugpy never answers a resume of a thread that is not suspended (one that resumed just as the
				// IDE sent the request); the IDE must not wait forever for that.
				s.log.Debug("debugpy did not answer a resume; the thread was not suspended", "command", req.command)
				s.resumed(req)
			case req.command == "continue" && resp.boolean("success"):
				s.resumed(req)
			default:
				if resumes[req.command] && !resp.boolean("success") {
					s.threads.setStopped(t.id, true) // debugpy refused: the thread is still paused
				}
				s.relay(req, d, resp, tg.thread)
			}
		})
	}
	if resumes[req.command] {
		timer = time.AfterFunc(resumeTimeout, func() { answer(nil, true) })
	}
	if err := d.startFunc(req.command, args, answer); err != nil {
		if timer != nil {
			timer.Stop()
		}
		s.respondErr(req, "%s: %v", req.command, err)
	}
}

// resumed answers a resume debugpy carried out. Only the named thread resumed; allThreadsContinued says whether
// that left no thread paused in the IDE's view, which is when it is true.
func (s *session) resumed(req request) {
	if req.command != "continue" {
		s.ack(req)
		return
	}
	s.sendMsg(&godap.ContinueResponse{Response: s.newResponse(req), Body: godap.ContinueResponseBody{AllThreadsContinued: !s.threads.anyStopped()}})
}

// threadsRequest asks every debuggee for its threads and answers with the ones that run handler code, named
// and numbered for the IDE. The answers are collected on the debuggees' readers, so a single function costs no
// extra goroutine hop.
func (s *session) threadsRequest(req request) {
	all := s.current()
	respond := func(threads []godap.Thread) {
		if threads == nil {
			threads = []godap.Thread{}
		}
		s.sendMsg(&godap.ThreadsResponse{Response: s.newResponse(req), Body: godap.ThreadsResponseBody{Threads: threads}})
	}
	if len(all) == 0 {
		respond(nil)
		return
	}
	var mu sync.Mutex
	results := make([][]godap.Thread, len(all))
	remaining := len(all)
	done := func(i int, threads []godap.Thread) {
		mu.Lock()
		results[i] = threads
		remaining--
		last := remaining == 0
		mu.Unlock()
		if !last {
			return
		}
		var flat []godap.Thread
		for _, r := range results {
			flat = append(flat, r...)
		}
		respond(flat)
	}
	for i, d := range all {
		err := d.startFunc("threads", nil, func(resp obj, ok bool) {
			defer s.recoverPanic(req)
			if !ok || !resp.boolean("success") {
				done(i, nil)
				return
			}
			done(i, s.handlerThreads(d, resp))
		})
		if err != nil {
			done(i, nil)
		}
	}
}

// handlerThreads turns a debuggee's threads response into the IDE's threads: only those that run handler code,
// with IDE ids and names.
func (s *session) handlerThreads(d *debuggee, resp obj) []godap.Thread {
	var out []godap.Thread
	for _, dt := range debugpyThreads(resp) {
		if hiddenThread(dt.Name) {
			if t, ok := s.threads.current(d, dt.ID); ok {
				s.threadGone(t) // a pool thread whose invocation finished
			}
			continue
		}
		t := s.bindThread(d, dt.ID, dt.Name)
		out = append(out, godap.Thread{Id: t.id, Name: threadName(d.fn, d.sandbox, dt.Name)})
	}
	return out
}

func (s *session) modulesRequest(req request) {
	all := s.current()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.recoverPanic(req)
		modules := []godap.Module{}
		for _, d := range all {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			resp, err := d.request(ctx, "modules", req.args)
			cancel()
			if err != nil || !resp.boolean("success") {
				continue
			}
			var b godap.ModulesResponseBody
			if json.Unmarshal(s.toIDE(d, resp["body"], 0), &b) == nil {
				modules = append(modules, b.Modules...)
			}
		}
		s.sendMsg(&godap.ModulesResponse{Response: s.newResponse(req), Body: godap.ModulesResponseBody{Modules: modules, TotalModules: len(modules)}})
	}()
}

// broadcastConfig sends function or exception breakpoints to every debuggee and answers with the first
// debuggee's answer (they run the same code), or success when none runs yet.
func (s *session) broadcastConfig(req request) {
	var first obj
	var firstD *debuggee
	for _, d := range s.current() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		resp, err := d.request(ctx, req.command, req.args)
		cancel()
		if err != nil {
			s.log.Warn("send configuration to debuggee", "command", req.command, "function", d.fn, "err", err)
			continue
		}
		if req.command == "setFunctionBreakpoints" {
			s.bindFunctionBreakpoints(d, req.args, resp)
		}
		if first == nil {
			first, firstD = resp, d
		}
	}
	if first == nil {
		if req.command != "setFunctionBreakpoints" {
			s.ack(req)
			return
		}
		var a struct {
			Breakpoints []struct {
				Name string `json:"name"`
			} `json:"breakpoints"`
		}
		_ = json.Unmarshal(req.args, &a)
		bps := []godap.Breakpoint{}
		for _, b := range a.Breakpoints {
			bps = append(bps, godap.Breakpoint{Id: s.bpIDs.get(bpKey{name: b.Name}), Verified: false})
		}
		s.sendMsg(&godap.SetFunctionBreakpointsResponse{Response: s.newResponse(req), Body: godap.SetFunctionBreakpointsResponseBody{Breakpoints: bps}})
		return
	}
	s.relay(req, firstD, first, 0)
}

func (s *session) bindFunctionBreakpoints(d *debuggee, args json.RawMessage, resp obj) {
	var a struct {
		Breakpoints []struct {
			Name string `json:"name"`
		} `json:"breakpoints"`
	}
	var b struct {
		Breakpoints []struct {
			ID int `json:"id"`
		} `json:"breakpoints"`
	}
	_ = json.Unmarshal(args, &a)
	_ = json.Unmarshal(resp["body"], &b)
	for i, bp := range b.Breakpoints {
		if i < len(a.Breakpoints) && bp.ID != 0 {
			s.bpRemote.bind(ref{d, bp.ID}, s.bpIDs.get(bpKey{name: a.Breakpoints[i].Name}))
		}
	}
}

// setBreakpoints keeps the source's breakpoints (replacing the previous set, as DAP wants), sends them to every
// debuggee, and answers with one merged list: a breakpoint is verified when any function verified it, and its
// id is stable for its source and requested line.
func (s *session) setBreakpoints(req request) {
	args, err := parseObj(req.args)
	if err != nil {
		s.respondErr(req, "setBreakpoints: arguments must be an object")
		return
	}
	src, _ := args.sub("source")
	path := src.str("path")
	if path == "" {
		// A source only a debuggee knows (sourceReference): it goes to that debuggee alone.
		s.forward(req)
		return
	}
	lines, err := breakpointLines(req.args)
	if err != nil {
		s.respondErr(req, "setBreakpoints: %v", err)
		return
	}
	s.mu.Lock()
	if _, ok := s.bps[path]; !ok {
		s.bpOrder = append(s.bpOrder, path)
	}
	s.bps[path] = args
	s.mu.Unlock()

	merged := s.unverified(path, lines)
	for _, d := range s.current() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		resp, err := d.request(ctx, "setBreakpoints", req.args)
		cancel()
		if err != nil {
			s.log.Warn("set breakpoints in debuggee", "function", d.fn, "err", err)
			continue
		}
		s.mergeBreakpoints(d, path, lines, resp, merged)
	}
	s.mu.Lock()
	for _, m := range merged {
		id, _ := m.num("id")
		s.bpState[id] = m.boolean("verified")
	}
	s.mu.Unlock()
	s.sendMsg(&godap.SetBreakpointsResponse{Response: s.newResponse(req), Body: godap.SetBreakpointsResponseBody{Breakpoints: toBreakpoints(merged)}})
}

// breakpointLines returns the lines setBreakpoints arguments ask for: their breakpoints' lines, or the deprecated
// "lines" when they have no breakpoints.
func breakpointLines(args json.RawMessage) ([]int, error) {
	var want struct {
		Breakpoints []struct {
			Line int `json:"line"`
		} `json:"breakpoints"`
		Lines []int `json:"lines"`
	}
	if err := json.Unmarshal(args, &want); err != nil {
		return nil, err
	}
	if len(want.Breakpoints) == 0 {
		return want.Lines, nil
	}
	lines := make([]int, len(want.Breakpoints))
	for i, b := range want.Breakpoints {
		lines[i] = b.Line
	}
	return lines, nil
}

// unverified starts a merged setBreakpoints answer for one source: per requested line, an unverified breakpoint
// with its stable IDE id, which mergeBreakpoints fills in from the debuggees' answers.
func (s *session) unverified(path string, lines []int) []obj {
	merged := make([]obj, len(lines))
	for i, line := range lines {
		merged[i] = obj{}
		merged[i].set("id", s.bpIDs.get(bpKey{path: path, line: line}))
		merged[i].set("verified", false)
		merged[i].set("line", line)
	}
	return merged
}

// mergeBreakpoints folds one debuggee's setBreakpoints answer into merged (from unverified) and binds its
// breakpoint ids.
func (s *session) mergeBreakpoints(d *debuggee, path string, lines []int, resp obj, merged []obj) {
	var b struct {
		Breakpoints []obj `json:"breakpoints"`
	}
	if json.Unmarshal(resp["body"], &b) != nil {
		return
	}
	for i, bp := range b.Breakpoints {
		if i >= len(lines) {
			break
		}
		id := s.bpIDs.get(bpKey{path: path, line: lines[i]})
		if rid, ok := bp.num("id"); ok {
			s.bpRemote.bind(ref{d, rid}, id)
		}
		if merged[i].boolean("verified") {
			continue
		}
		// An unverified answer replaces only unverified's placeholder (its 3 fields), so that it carries the
		// debuggee's message.
		if bp.boolean("verified") || len(merged[i]) <= 3 {
			c := obj{}
			for k, v := range bp {
				c[k] = v
			}
			c.set("id", id)
			if _, ok := c["line"]; !ok {
				c.set("line", lines[i])
			}
			if src, ok := c["source"]; ok {
				c["source"] = s.toIDE(d, src, 0)
			}
			merged[i] = c
		}
	}
}

// toBreakpoints turns merged breakpoint objects into go-dap's type for the adapter's own answer.
func toBreakpoints(merged []obj) []godap.Breakpoint {
	out := make([]godap.Breakpoint, len(merged))
	for i, m := range merged {
		_ = json.Unmarshal(m.bytes(), &out[i]) // built from set and from debugpy's breakpoints: always an object
	}
	return out
}
