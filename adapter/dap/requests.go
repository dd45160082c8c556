package dap

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"sync"
	"time"
)

// handle serves one request; true ends the session.
func (s *session) handle(req request) bool {
	s.log.Debug("request", "command", req.command, "seq", req.seq)
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
		s.respond(req, capabilities())
	case "launch":
		s.launch(req)
	case "attach":
		s.respondErr(req, `attach is not supported yet: use "request": "launch" with "mode": "local"`)
	case "configurationDone":
		s.respond(req, nil)
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
	case "disconnect", "terminate":
		s.shutdown(req.command == "terminate")
		if req.command == "terminate" {
			s.respond(req, nil)
			s.sendEvent("terminated", nil)
			return false
		}
		s.respond(req, nil)
		return true
	default:
		s.respondErr(req, "plldb does not support the %q request", req.command)
	}
	return false
}

// resumes are the requests debugpy answers only for a suspended thread.
var resumes = map[string]bool{"continue": true, "next": true, "stepIn": true, "stepOut": true}

// resumeTimeout is how long a resume waits for debugpy's answer before the adapter answers it.
const resumeTimeout = 5 * time.Second

func capabilities() map[string]any {
	return map[string]any{
		"supportsConfigurationDoneRequest":  true,
		"supportsConditionalBreakpoints":    true,
		"supportsHitConditionalBreakpoints": true,
		"supportsEvaluateForHovers":         true,
		"supportsSetVariable":               true,
		"supportsGotoTargetsRequest":        true,
		"supportsCompletionsRequest":        true,
		"supportsModulesRequest":            true,
		"supportsExceptionOptions":          true,
		"supportsValueFormattingOptions":    true,
		"supportsExceptionInfoRequest":      true,
		"supportTerminateDebuggee":          true,
		"supportsDelayedStackTraceLoading":  true,
		"supportsLogPoints":                 true,
		"supportsSetExpression":             true,
		"supportsTerminateRequest":          true,
		"supportsClipboardContext":          true,
		"supportsFunctionBreakpoints":       true,
		"supportsStepInTargetsRequest":      true,
		"supportsDebuggerProperties":        false,
		"exceptionBreakpointFilters": []map[string]any{
			{"filter": "raised", "label": "Raised Exceptions", "default": false},
			{"filter": "uncaught", "label": "Uncaught Exceptions", "default": true},
			{"filter": "userUnhandled", "label": "User Uncaught Exceptions", "default": false},
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
	sort.Slice(out, func(i, j int) bool { return out[i].fn < out[j].fn })
	return out
}

// forward routes a request to the debuggee its ids name (or, naming none, the one that stopped last, else the
// first function by name).
func (s *session) forward(req request) {
	d, args, err := s.fromIDE(req.args)
	if err != nil {
		s.respondErr(req, "%s: %v", req.command, err)
		return
	}
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
			if timer != nil {
				timer.Stop()
			}
			switch {
			case !ok:
				s.respondErr(req, "%s of %s: %v", req.command, d.fn, errDebuggeeGone)
			case resp == nil:
				// debugpy never answers a resume of a thread that is not suspended (one the IDE saw stopped
				// just as another request resumed it); the IDE must not wait forever for that.
				s.log.Debug("debugpy did not answer a resume; the thread was not suspended", "command", req.command)
				body := map[string]any{}
				if req.command == "continue" {
					body["allThreadsContinued"] = false
				}
				s.respond(req, body)
			default:
				if req.command == "continue" {
					s.continued(d, args, resp)
				}
				s.relay(req, d, resp)
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

// continued keeps a continue that released every thread of one debuggee from releasing other functions' threads
// in the IDE: allThreadsContinued becomes false and the debuggee's other stopped threads get continued events.
func (s *session) continued(d *debuggee, args json.RawMessage, resp obj) {
	body, ok := resp.sub("body")
	all := !ok || body.boolean("allThreadsContinued") || body["allThreadsContinued"] == nil
	var a struct {
		ThreadID int `json:"threadId"`
	}
	_ = json.Unmarshal(args, &a)
	tid, _ := s.threads.peek(ref{d, a.ThreadID})
	others := s.resumed(d, tid, all)
	if ok {
		body.set("allThreadsContinued", false)
		resp["body"] = body.bytes()
	}
	s.sendContinued(others)
}

// threadsRequest asks every debuggee for its threads and answers with all of them, renamed and remapped. The
// answers are collected on the debuggees' readers, so a single function costs no extra goroutine hop.
func (s *session) threadsRequest(req request) {
	all := s.current()
	if len(all) == 0 {
		s.respond(req, map[string]any{"threads": []any{}})
		return
	}
	var mu sync.Mutex
	results := make([][]json.RawMessage, len(all))
	remaining := len(all)
	done := func(i int, threads []json.RawMessage) {
		mu.Lock()
		results[i] = threads
		remaining--
		last := remaining == 0
		mu.Unlock()
		if !last {
			return
		}
		var flat []json.RawMessage
		for _, r := range results {
			flat = append(flat, r...)
		}
		s.respond(req, obj{"threads": appendArray(flat)})
	}
	for i, d := range all {
		err := d.startFunc("threads", nil, func(resp obj, ok bool) {
			if !ok || !resp.boolean("success") {
				done(i, nil)
				return
			}
			done(i, s.debuggeeThreads(d, resp["body"]))
		})
		if err != nil {
			done(i, nil)
		}
	}
}

// debuggeeThreads turns a debuggee's threads body into the IDE's threads: adapter ids and function names.
func (s *session) debuggeeThreads(d *debuggee, body json.RawMessage) []json.RawMessage {
	var b struct {
		Threads []obj `json:"threads"`
	}
	if json.Unmarshal(body, &b) != nil {
		return nil
	}
	out := make([]json.RawMessage, 0, len(b.Threads))
	for _, t := range b.Threads {
		if id, ok := t.num("id"); ok {
			t["id"] = strconv.AppendInt(nil, int64(s.threads.get(ref{d, id})), 10)
		}
		t.set("name", threadName(d.fn, t.str("name")))
		out = append(out, t.bytes())
	}
	return out
}

func (s *session) modulesRequest(req request) {
	all := s.current()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		modules := []json.RawMessage{}
		for _, d := range all {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			resp, err := d.request(ctx, "modules", req.args)
			cancel()
			if err != nil || !resp.boolean("success") {
				continue
			}
			var b struct {
				Modules []json.RawMessage `json:"modules"`
			}
			if json.Unmarshal(s.toIDE(d, resp["body"]), &b) == nil {
				modules = append(modules, b.Modules...)
			}
		}
		s.respond(req, map[string]any{"modules": modules, "totalModules": len(modules)})
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
		body := map[string]any{}
		if req.command == "setFunctionBreakpoints" {
			var a struct {
				Breakpoints []struct {
					Name string `json:"name"`
				} `json:"breakpoints"`
			}
			_ = json.Unmarshal(req.args, &a)
			bps := []map[string]any{}
			for _, b := range a.Breakpoints {
				bps = append(bps, map[string]any{"id": s.bpIDs.get(bpKey{name: b.Name}), "verified": false})
			}
			body["breakpoints"] = bps
		}
		s.respond(req, body)
		return
	}
	s.relay(req, firstD, first)
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
	s.respond(req, map[string]any{"breakpoints": merged})
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
				c["source"] = s.toIDE(d, src)
			}
			merged[i] = c
		}
	}
}
