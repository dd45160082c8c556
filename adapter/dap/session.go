package dap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	godap "github.com/google/go-dap"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/bridge/wire"
)

// Options configure the adapter's sessions.
type Options struct {
	Logger *slog.Logger
	// ShutdownTimeout bounds how long disconnect waits for the pipeline to answer in-flight invocations; 0 → 20 s.
	ShutdownTimeout time.Duration
	// LaunchDefaults are launch attributes applied when the IDE's launch request leaves them out (`plldb attach
	// --listen` presets "mode": "aws" and the stack this way).
	LaunchDefaults map[string]any
}

// session is one IDE debug session: one connection, one local pipeline, one debuggee per function.
//
// Goroutines: one reader handles the IDE's requests in order (so setBreakpoints for one source apply in the
// order sent); each debuggee has a reader that translates its events, and relays the responses to proxied
// requests, as they arrive. Every write to the IDE goes through send, which serializes them. The session ends
// when the IDE disconnects or goes away (EOF), or ctx ends; the pipeline is then closed, which answers every
// in-flight invocation.
type session struct {
	opts Options
	log  *slog.Logger
	rw   io.ReadWriteCloser

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelFunc

	wmu sync.Mutex
	seq int

	initArgs json.RawMessage // under mu: re-attaches read it from other goroutines
	progress bool
	// detachedReader: rw's Close does not interrupt a Read (stdin), so run does not wait for the reader.
	detachedReader bool

	mu        sync.Mutex
	cfg       *LaunchConfig
	pipeline  backend
	debuggees map[string]*debuggee // logical id → current debuggee
	attaching map[string]int       // logical id → port being attached
	lastStop  *debuggee
	stopped   map[int]bool           // adapter thread ids the IDE believes stopped
	bps       map[string]obj         // source path → the IDE's last setBreakpoints arguments
	bpOrder   []string               // sources in the order first set
	bpState   map[int]bool           // adapter breakpoint id → verified, as the IDE last heard
	fnBps     json.RawMessage        // last setFunctionBreakpoints arguments
	excBps    json.RawMessage        // last setExceptionBreakpoints arguments
	invokes   map[string]invokeState // request id → its function and start
	closing   bool                   // shutdown has begun: nothing new may start
	shutOnce  sync.Once
	shutDone  chan struct{}
	wg        sync.WaitGroup

	threads  *handles[ref]
	frames   *handles[ref]
	vars     *handles[ref]
	sources  *handles[ref]
	bpIDs    *handles[bpKey] // stable IDE breakpoint ids per source and requested line
	bpRemote *handles[ref]   // a debuggee's breakpoint id → IDE breakpoint id (bound, not allocated)
}

type bpKey struct {
	path string
	line int
	name string // function breakpoints
}

type invokeState struct {
	fn    string
	start time.Time
}

type request struct {
	seq     int
	command string
	args    json.RawMessage
}

func newSession(rw io.ReadWriteCloser, opts Options) *session {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 20 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		opts: opts, log: opts.Logger, rw: rw, ctx: ctx, cancel: cancel,
		debuggees: map[string]*debuggee{}, attaching: map[string]int{}, stopped: map[int]bool{},
		bps: map[string]obj{}, bpState: map[int]bool{}, invokes: map[string]invokeState{}, shutDone: make(chan struct{}),
		threads: newHandles[ref](), frames: newHandles[ref](), vars: newHandles[ref](), sources: newHandles[ref](),
		bpIDs: newHandles[bpKey](), bpRemote: newHandles[ref](),
	}
}

// Serve runs one debug session over rw until the IDE disconnects or goes away, or ctx ends. It closes rw.
func Serve(ctx context.Context, rw io.ReadWriteCloser, opts Options) error {
	s := newSession(rw, opts)
	return s.run(ctx)
}

func (s *session) run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.serveRequests() }()
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		s.cancel()
		_ = s.rw.Close()
		if !s.detachedReader {
			err = <-served
		}
		// A blocking stdin cannot be interrupted by Close: its reader ends when the IDE closes the pipe or with
		// the process, and whatever it is handling sees the session closing.
	}
	s.shutdown(false)
	s.cancel()
	_ = s.rw.Close()
	s.wg.Wait()
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return fmt.Errorf("read from the IDE: %w", err)
}

// serveRequests reads the IDE's requests and handles them in order on this one goroutine, until disconnect or
// the end of the connection. Handling in the reader keeps a request one wakeup closer to debugpy; the handlers
// that wait (launch, setBreakpoints) are bounded by the session's context and per-request timeouts.
func (s *session) serveRequests() error {
	br := bufio.NewReader(s.rw)
	for {
		raw, err := godap.ReadBaseMessage(br)
		if err != nil {
			var bpe *godap.BaseProtocolError
			if errors.As(err, &bpe) {
				s.log.Warn("IDE sent a malformed DAP frame; ending the session", "err", err)
			}
			return err
		}
		m, err := parseObj(raw)
		if err != nil {
			s.sendEvent("output", map[string]any{"category": "important", "output": "plldb: ignoring a message that is not a JSON object\n"})
			continue
		}
		if m.str("type") != "request" {
			continue // responses to reverse requests we never send
		}
		seq, _ := m.num("seq")
		if s.handle(request{seq: seq, command: m.str("command"), args: m["arguments"]}) {
			return nil
		}
	}
}

// --- sending ------------------------------------------------------------------------------------------------

func (s *session) send(m obj) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.seq++
	m.set("seq", s.seq)
	if err := writeFrame(s.rw, m.bytes()); err != nil {
		s.log.Debug("write to IDE", "err", err)
	}
}

func (s *session) sendEvent(event string, body any) {
	m := obj{}
	m.set("type", "event")
	m.set("event", event)
	if body != nil {
		m.set("body", body)
	}
	s.send(m)
}

func (s *session) respond(req request, body any) {
	m := obj{}
	m.set("type", "response")
	m.set("request_seq", req.seq)
	m.set("command", req.command)
	m.set("success", true)
	if o, ok := body.(obj); ok {
		m["body"] = o.bytes()
	} else if body != nil {
		m.set("body", body)
	}
	s.send(m)
}

func (s *session) respondErr(req request, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m := obj{}
	m.set("type", "response")
	m.set("request_seq", req.seq)
	m.set("command", req.command)
	m.set("success", false)
	m.set("message", msg)
	m.set("body", map[string]any{"error": map[string]any{"id": 1, "format": msg, "showUser": true}})
	s.send(m)
}

// relay answers the IDE with a debuggee's response, ids translated and request_seq rewritten.
func (s *session) relay(req request, d *debuggee, resp obj) {
	resp.set("request_seq", req.seq)
	resp.set("command", req.command)
	if body, ok := resp["body"]; ok {
		resp["body"] = s.toIDE(d, body)
		if req.command == "threads" {
			resp["body"] = s.nameThreads(d, resp["body"])
		}
	}
	s.send(resp)
}

func (s *session) output(category, text string) {
	s.sendEvent("output", map[string]any{"category": category, "output": text})
}

// --- id translation -----------------------------------------------------------------------------------------

func (s *session) handlesFor(kind idKind) *handles[ref] {
	switch kind {
	case kindThread:
		return s.threads
	case kindFrame:
		return s.frames
	case kindVar:
		return s.vars
	case kindSource:
		return s.sources
	}
	return nil
}

// toIDE rewrites a debuggee's ids into the adapter's.
func (s *session) toIDE(d *debuggee, body json.RawMessage) json.RawMessage {
	return remap(body, func(kind idKind, id int) (int, bool) {
		if kind == kindBreakpoint {
			return s.bpRemote.peek(ref{d, id})
		}
		return s.handlesFor(kind).get(ref{d, id}), true
	})
}

// fromIDE rewrites the adapter's ids in request arguments into one debuggee's, which it picks from them. A nil
// debuggee means the arguments name none.
func (s *session) fromIDE(args json.RawMessage) (*debuggee, json.RawMessage, error) {
	var target *debuggee
	var bad error
	out := remap(args, func(kind idKind, id int) (int, bool) {
		h := s.handlesFor(kind)
		if h == nil {
			return 0, false
		}
		r, ok := h.lookup(id)
		if !ok {
			if bad == nil {
				bad = fmt.Errorf("unknown %s %d", kindName(kind), id)
			}
			return 0, false
		}
		if target == nil {
			target = r.d
		} else if target != r.d && bad == nil {
			bad = fmt.Errorf("%s %d belongs to another function", kindName(kind), id)
		}
		return r.id, true
	})
	return target, out, bad
}

func kindName(k idKind) string {
	switch k {
	case kindThread:
		return "threadId"
	case kindFrame:
		return "frameId"
	case kindVar:
		return "variablesReference"
	case kindSource:
		return "sourceReference"
	}
	return "breakpoint id"
}

// nameThreads names each thread "<FunctionLogicalId> <request id>" (invocation threads) or
// "<FunctionLogicalId> <thread name>".
func (s *session) nameThreads(d *debuggee, body json.RawMessage) json.RawMessage {
	b, err := parseObj(body)
	if err != nil {
		return body
	}
	var threads []obj
	if json.Unmarshal(b["threads"], &threads) != nil {
		return body
	}
	for _, t := range threads {
		t.set("name", threadName(d.fn, t.str("name")))
	}
	b.set("threads", threads)
	return b.bytes()
}

func threadName(fn, name string) string {
	if rid, ok := strings.CutPrefix(name, "plldb-invoke "); ok {
		return fn + " " + rid
	}
	return fn + " " + name
}

// --- requests -----------------------------------------------------------------------------------------------

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

// forward routes a request to the debuggee its ids name (or, naming none, the one that stopped last).
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
	// The response is relayed from the debuggee's reader: the dispatcher moves on at once, and no goroutine
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
	var others []int
	s.mu.Lock()
	delete(s.stopped, tid)
	if all {
		for id := range s.stopped {
			if r, ok := s.threads.lookup(id); ok && r.d == d {
				others = append(others, id)
				delete(s.stopped, id)
			}
		}
	}
	s.mu.Unlock()
	if ok {
		body.set("allThreadsContinued", false)
		resp["body"] = body.bytes()
	}
	sort.Ints(others)
	for _, id := range others {
		s.sendEvent("continued", map[string]any{"threadId": id, "allThreadsContinued": false})
	}
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
	var want struct {
		Breakpoints []struct {
			Line int `json:"line"`
		} `json:"breakpoints"`
		Lines []int `json:"lines"`
	}
	if err := json.Unmarshal(req.args, &want); err != nil {
		s.respondErr(req, "setBreakpoints: %v", err)
		return
	}
	lines := want.Lines
	if len(want.Breakpoints) > 0 {
		lines = lines[:0:0]
		for _, b := range want.Breakpoints {
			lines = append(lines, b.Line)
		}
	}
	s.mu.Lock()
	if _, ok := s.bps[path]; !ok {
		s.bpOrder = append(s.bpOrder, path)
	}
	s.bps[path] = args
	s.mu.Unlock()

	merged := make([]obj, len(lines))
	for i, line := range lines {
		merged[i] = obj{}
		merged[i].set("id", s.bpIDs.get(bpKey{path: path, line: line}))
		merged[i].set("verified", false)
		merged[i].set("line", line)
	}
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

// mergeBreakpoints folds one debuggee's setBreakpoints answer into merged and binds its breakpoint ids.
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

// --- launch and debuggees -----------------------------------------------------------------------------------

func (s *session) launch(req request) {
	s.mu.Lock()
	launched := s.cfg != nil
	s.mu.Unlock()
	if launched {
		s.respondErr(req, "launch: this session has already launched")
		return
	}
	cfg, err := parseLaunchWith(req.args, s.opts.LaunchDefaults)
	if err != nil {
		s.respondErr(req, "launch: %v", err)
		return
	}
	progressID := fmt.Sprintf("plldb-start-%d", req.seq)
	if s.progress {
		s.sendEvent("progressStart", map[string]any{"progressId": progressID, "title": "Starting function executors", "cancellable": false})
	}
	endProgress := func(msg string) {
		if s.progress {
			s.sendEvent("progressEnd", map[string]any{"progressId": progressID, "message": msg})
		}
	}
	start := time.Now()
	p, err := s.startBackend(cfg)
	if err != nil {
		endProgress("failed")
		s.respondErr(req, "launch: %v", err)
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		endProgress("session ended")
		closeCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		_ = p.close(closeCtx)
		cancel()
		s.respondErr(req, "launch: the session ended")
		return
	}
	s.cfg, s.pipeline = cfg, p
	s.mu.Unlock()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, fn := range p.functions() {
		if cfg.NoDebug { // "Run without debugging": the pipeline alone, no debugpy to attach to
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.attach(fn.LogicalID, fn.DebugPort); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		endProgress("failed")
		s.respondErr(req, "launch: %v", err)
		return
	}
	endProgress(fmt.Sprintf("ready in %s", time.Since(start).Round(time.Millisecond)))
	s.output("console", p.banner())
	s.respond(req, nil)
	s.sendEvent("initialized", nil)
}

// attach connects to one function's debugpy and configures it with the session's breakpoints. It replaces the
// function's previous debuggee (an executor that restarted).
func (s *session) attach(fn string, port int) error {
	s.mu.Lock()
	if old, ok := s.debuggees[fn]; (ok && old.port == port) || s.attaching[fn] == port {
		s.mu.Unlock()
		return nil
	}
	s.attaching[fn] = port
	cfg := s.cfg
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.attaching[fn] == port {
			delete(s.attaching, fn)
		}
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(s.ctx, attachTimeout)
	defer cancel()
	d, err := dialDebuggee(ctx, fn, port, s.log, s.onDebuggeeEvent)
	if err != nil {
		return err
	}
	if err := s.configure(ctx, d, cfg); err != nil {
		d.close()
		return fmt.Errorf("attach to %s: %w", fn, err)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		d.close()
		return fmt.Errorf("attach to %s: the session ended", fn)
	}
	old := s.debuggees[fn]
	s.debuggees[fn] = d
	s.mu.Unlock()
	if old != nil {
		s.forget(old)
	}
	s.log.Debug("attached", "function", fn, "port", port)
	return nil
}

// configure runs debugpy's attach handshake: initialize, attach, wait for initialized, replay the session's
// breakpoints and exception settings, configurationDone, then the attach response.
func (s *session) configure(ctx context.Context, d *debuggee, cfg *LaunchConfig) error {
	s.mu.Lock()
	init := s.initArgs
	s.mu.Unlock()
	if len(init) == 0 {
		init = mustJSON(map[string]any{"clientID": "plldb", "adapterID": "python", "linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"})
	}
	if resp, err := d.request(ctx, "initialize", init); err != nil {
		return err
	} else if !resp.boolean("success") {
		return fmt.Errorf("initialize: %s", resp.str("message"))
	}
	attachArgs := map[string]any{
		"justMyCode": cfg.JustMyCode, "subProcess": cfg.SubProcess, "redirectOutput": false,
		"showReturnValue": true,
		// The executor runs as __main__; its frames below the handler are plldb's, not the developer's code.
		"rules": []map[string]any{{"module": "__main__", "include": false}},
	}
	if len(cfg.PathMappings) > 0 {
		attachArgs["pathMappings"] = cfg.PathMappings
	}
	attachCh, err := d.start("attach", mustJSON(attachArgs))
	if err != nil {
		return err
	}
	select {
	case <-d.initialized:
	case resp, ok := <-attachCh:
		if !ok {
			return errDebuggeeGone
		}
		if !resp.boolean("success") {
			return fmt.Errorf("attach: %s", resp.str("message"))
		}
		attachCh = nil
		select {
		case <-d.initialized:
		case <-ctx.Done():
			return fmt.Errorf("wait for initialized: %w", ctx.Err())
		}
	case <-ctx.Done():
		return fmt.Errorf("wait for initialized: %w", ctx.Err())
	}
	s.mu.Lock()
	var srcs []obj
	var paths []string
	for _, p := range s.bpOrder {
		srcs = append(srcs, s.bps[p])
		paths = append(paths, p)
	}
	fnBps, excBps := s.fnBps, s.excBps
	s.mu.Unlock()
	for i, args := range srcs {
		resp, err := d.request(ctx, "setBreakpoints", args.bytes())
		if err != nil {
			return err
		}
		s.replayed(d, paths[i], args, resp)
	}
	if fnBps != nil {
		resp, err := d.request(ctx, "setFunctionBreakpoints", fnBps)
		if err != nil {
			return err
		}
		s.bindFunctionBreakpoints(d, fnBps, resp)
	}
	if excBps != nil {
		if _, err := d.request(ctx, "setExceptionBreakpoints", excBps); err != nil {
			return err
		}
	}
	if resp, err := d.request(ctx, "configurationDone", nil); err != nil {
		return err
	} else if !resp.boolean("success") {
		return fmt.Errorf("configurationDone: %s", resp.str("message"))
	}
	if attachCh != nil {
		resp, err := d.wait(ctx, "attach", attachCh)
		if err != nil {
			return err
		}
		if !resp.boolean("success") {
			return fmt.Errorf("attach: %s", resp.str("message"))
		}
	}
	return nil
}

// replayed binds a replayed source's breakpoints and tells the IDE of the ones whose verification changed.
func (s *session) replayed(d *debuggee, path string, args obj, resp obj) {
	var want struct {
		Breakpoints []struct {
			Line int `json:"line"`
		} `json:"breakpoints"`
	}
	_ = json.Unmarshal(args.bytes(), &want)
	lines := make([]int, len(want.Breakpoints))
	merged := make([]obj, len(lines))
	for i, b := range want.Breakpoints {
		lines[i] = b.Line
		merged[i] = obj{}
		merged[i].set("id", s.bpIDs.get(bpKey{path: path, line: b.Line}))
		merged[i].set("verified", false)
		merged[i].set("line", b.Line)
	}
	s.mergeBreakpoints(d, path, lines, resp, merged)
	for _, m := range merged {
		s.breakpointChanged(m)
	}
}

// breakpointChanged sends a breakpoint event when bp's verification differs from what the IDE knows.
func (s *session) breakpointChanged(bp obj) {
	id, _ := bp.num("id")
	v := bp.boolean("verified")
	s.mu.Lock()
	old, known := s.bpState[id]
	if known && old == v || !known && !v {
		s.mu.Unlock()
		return
	}
	s.bpState[id] = v
	s.mu.Unlock()
	s.sendEvent("breakpoint", map[string]any{"reason": "changed", "breakpoint": bp})
}

// forget drops a debuggee that went away: its handles, and the IDE's view of its stopped threads.
func (s *session) forget(d *debuggee) {
	d.close()
	var gone []int
	s.mu.Lock()
	for id := range s.stopped {
		if r, ok := s.threads.lookup(id); ok && r.d == d {
			gone = append(gone, id)
			delete(s.stopped, id)
		}
	}
	if s.lastStop == d {
		s.lastStop = nil
	}
	s.mu.Unlock()
	for _, id := range gone {
		s.sendEvent("thread", map[string]any{"reason": "exited", "threadId": id})
	}
	mine := func(r ref) bool { return r.d == d }
	s.frames.drop(mine)
	s.vars.drop(mine)
	s.bpRemote.drop(mine)
}

// onExecutorStart re-attaches after an executor restart. The first start of each executor, during launch, is
// attached by launch itself.
func (s *session) onExecutorStart(fn string, _ int, port int) {
	s.mu.Lock()
	ready, cfg := s.pipeline != nil, s.cfg
	s.mu.Unlock()
	if !ready || port == 0 || s.ctx.Err() != nil || cfg == nil || cfg.NoDebug {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.attach(fn, port); err != nil && s.ctx.Err() == nil {
			s.log.Error("re-attach after executor restart", "function", fn, "err", err)
			s.output("important", fmt.Sprintf("plldb: could not attach to %s after its executor restarted: %v\n", fn, err))
		} else if err == nil {
			s.output("console", fmt.Sprintf("plldb: %s restarted; debugger attached again\n", fn))
		}
	}()
}

// --- debuggee events ----------------------------------------------------------------------------------------

func (s *session) onDebuggeeEvent(d *debuggee, m obj) {
	event := m.str("event")
	switch event {
	case "terminated", "exited", "process", "debugpyWaitingForServer":
		return // the adapter's session outlives any one executor
	case "breakpoint":
		body, ok := m.sub("body")
		if !ok {
			return
		}
		bp, ok := body.sub("breakpoint")
		if !ok {
			return
		}
		rid, _ := bp.num("id")
		id, ok := s.bpRemote.peek(ref{d, rid})
		if !ok {
			return
		}
		bp.set("id", id)
		if src, ok := bp["source"]; ok {
			bp["source"] = s.toIDE(d, src)
		}
		s.breakpointChanged(bp)
		return
	}
	if body, ok := m["body"]; ok {
		m["body"] = s.toIDE(d, body)
	}
	switch event {
	case "stopped":
		body, _ := m.sub("body")
		tid, _ := body.num("threadId")
		s.mu.Lock()
		s.stopped[tid] = true
		s.lastStop = d
		s.mu.Unlock()
		if body.boolean("allThreadsStopped") {
			body.set("allThreadsStopped", false)
			m["body"] = body.bytes()
			s.send(m)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.stopOthers(d, tid, body.str("reason"))
			}()
			return
		}
	case "continued":
		body, _ := m.sub("body")
		tid, _ := body.num("threadId")
		var others []int
		s.mu.Lock()
		delete(s.stopped, tid)
		if body.boolean("allThreadsContinued") {
			for id := range s.stopped {
				if r, ok := s.threads.lookup(id); ok && r.d == d {
					others = append(others, id)
					delete(s.stopped, id)
				}
			}
		}
		s.mu.Unlock()
		if body.boolean("allThreadsContinued") {
			body.set("allThreadsContinued", false)
			m["body"] = body.bytes()
			s.send(m)
			for _, id := range others {
				s.sendEvent("continued", map[string]any{"threadId": id, "allThreadsContinued": false})
			}
			return
		}
	case "thread":
		body, _ := m.sub("body")
		if body.str("reason") == "exited" {
			tid, _ := body.num("threadId")
			s.mu.Lock()
			delete(s.stopped, tid)
			s.mu.Unlock()
		}
	}
	s.send(m)
}

// stopOthers tells the IDE about the other threads of a debuggee that stopped all its threads, without
// stealing focus, so that the IDE's view matches debugpy's while other functions keep running.
func (s *session) stopOthers(d *debuggee, tid int, reason string) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	resp, err := d.request(ctx, "threads", nil)
	if err != nil || !resp.boolean("success") {
		return
	}
	var b struct {
		Threads []struct {
			ID int `json:"id"`
		} `json:"threads"`
	}
	if json.Unmarshal(s.toIDE(d, resp["body"]), &b) != nil {
		return
	}
	for _, t := range b.Threads {
		s.mu.Lock()
		if !s.stopped[tid] { // continued meanwhile: the others were released with it
			s.mu.Unlock()
			return
		}
		already := t.ID == tid || s.stopped[t.ID]
		if !already {
			s.stopped[t.ID] = true
		}
		s.mu.Unlock()
		if !already {
			s.sendEvent("stopped", map[string]any{"reason": reason, "threadId": t.ID, "allThreadsStopped": false, "preserveFocusHint": true})
		}
	}
}

// --- invocations --------------------------------------------------------------------------------------------

// observer turns the pipeline's invocations into output events.
type observer struct{ s *session }

func (o observer) Started(inv *wire.Invoke) {
	fn := inv.Function.LogicalID
	if fn == "" {
		fn = inv.Function.Name
	}
	o.s.mu.Lock()
	o.s.invokes[inv.RequestID] = invokeState{fn: fn, start: time.Now()}
	o.s.mu.Unlock()
	o.s.output("console", fmt.Sprintf("→ %s %s started\n", fn, inv.RequestID))
}

func (o observer) Finished(inv *wire.Invoke, out executor.Outcome, err error) {
	o.s.mu.Lock()
	st := o.s.invokes[inv.RequestID]
	delete(o.s.invokes, inv.RequestID)
	o.s.mu.Unlock()
	status := "ok"
	switch {
	case err != nil:
		status = "failed: " + err.Error()
	case out.Err != nil:
		status = "error " + out.Err.ErrorType + ": " + out.Err.ErrorMessage
	}
	o.s.output("console", fmt.Sprintf("← %s %s %s in %s\n", st.fn, inv.RequestID, status, time.Since(st.start).Round(100*time.Microsecond)))
}

func (s *session) onLog(line executor.LogLine) {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	if cfg != nil && !cfg.RedirectOutput {
		return
	}
	category := "stdout"
	if line.Stream == "stderr" {
		category = "stderr"
	}
	s.output(category, line.Text)
}

// --- shutdown -----------------------------------------------------------------------------------------------

// shutdown detaches from every debugpy (which resumes paused threads, so their invocations finish) and closes
// the pipeline, which answers whatever is still in flight. It runs once; later calls wait for the first.
func (s *session) shutdown(terminate bool) {
	s.shutOnce.Do(func() {
		defer close(s.shutDone)
		s.mu.Lock()
		s.closing = true
		p := s.pipeline
		ds := make([]*debuggee, 0, len(s.debuggees))
		for _, d := range s.debuggees {
			ds = append(ds, d)
		}
		s.debuggees = map[string]*debuggee{}
		s.pipeline = nil
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_, _ = d.request(ctx, "disconnect", mustJSON(map[string]any{"terminateDebuggee": false}))
				d.close()
			}()
		}
		wg.Wait()
		if p != nil {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
			if err := p.close(ctx); err != nil {
				s.log.Warn("close the launch", "err", err)
				s.output("stderr", fmt.Sprintf("plldb: %v\n", err))
			}
			cancel()
		}
		_ = terminate
	})
	<-s.shutDone
}
