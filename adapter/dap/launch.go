package dap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	godap "github.com/google/go-dap"
	"github.com/plldb/plldb/adapter/executor"
)

func (s *session) launch(req request) {
	s.mu.Lock()
	launched := s.cfg != nil
	s.mu.Unlock()
	if launched {
		s.respondErr(req, "launch: this session has already launched")
		return
	}
	if h := s.opts.Host; h != nil {
		// A server with a host of its own: a launch beside it would run the same functions twice, whatever its
		// arguments, so this is checked first. shutdown releases the claim once the launch's backend is closed.
		if err := h.claim(s); err != nil {
			s.respondErr(req, "launch: %v", err)
			return
		}
	}
	cfg, err := parseLaunchWith(req.args, s.opts.LaunchDefaults)
	if err != nil {
		if h := s.opts.Host; h != nil {
			h.release(s)
		}
		s.respondErr(req, "launch: %v", err)
		return
	}
	progressID := fmt.Sprintf("plldb-start-%d", req.seq)
	if s.progress {
		s.sendMsg(&godap.ProgressStartEvent{Event: s.newEvent("progressStart"), Body: godap.ProgressStartEventBody{ProgressId: progressID, Title: "Starting function executors"}})
	}
	endProgress := func(msg string) {
		if s.progress {
			s.sendMsg(&godap.ProgressEndEvent{Event: s.newEvent("progressEnd"), Body: godap.ProgressEndEventBody{ProgressId: progressID, Message: msg}})
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

	if !cfg.NoDebug { // "Run without debugging": the pipeline alone, no debugpy to attach to
		if err := s.attachAll(p.functions()); err != nil {
			endProgress("failed")
			s.respondErr(req, "launch: %v", err)
			return
		}
	}
	endProgress(fmt.Sprintf("ready in %s", time.Since(start).Round(time.Millisecond)))
	s.output("console", p.banner())
	if cfg.NoDebug {
		s.configured() // no debugger to configure: nothing to hold invocations for
	}
	s.ack(req)
	s.sendMsg(&godap.InitializedEvent{Event: s.newEvent("initialized")})
}

// attachAll attaches to every function's debugpy at once.
func (s *session) attachAll(fns []backendFunction) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.attach(fn); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// attachRequest binds the session to the command's host (Options.Host): the backend already runs, and the
// session attaches to every function's debugpy with the IDE's breakpoints, as launch does. Invocations that
// arrive meanwhile wait for configurationDone. Disconnecting detaches only the IDE (shutdown).
func (s *session) attachRequest(req request) {
	h := s.opts.Host
	if h == nil {
		s.respondErr(req, "attach: this plldb dap runs no functions of its own to attach to: use \"request\": \"launch\", "+
			"or start a session that outlives the IDE with `plldb local --debug --listen 127.0.0.1:4711` "+
			"(or `plldb attach --stack-name STACK --listen 127.0.0.1:4711`) and attach to that address")
		return
	}
	s.mu.Lock()
	started := s.cfg != nil
	s.mu.Unlock()
	if started {
		s.respondErr(req, "attach: this session has already launched or attached")
		return
	}
	cfg, err := parseAttach(req.args)
	if err != nil {
		s.respondErr(req, "attach: %v", err)
		return
	}
	b, err := h.bind(s)
	if err != nil {
		s.respondErr(req, "attach: %v", err)
		return
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		h.release(s)
		s.respondErr(req, "attach: the session ended")
		return
	}
	s.cfg, s.shared = cfg, b
	s.mu.Unlock()
	if err := s.attachAll(b.functions()); err != nil {
		s.respondErr(req, "attach: %v", err)
		return
	}
	s.output("console", b.banner())
	s.output("console", "plldb: attached to a running plldb; disconnecting detaches the debugger only (breakpoints are cleared, paused invocations go on), and the functions keep being served until plldb stops\n")
	s.ack(req)
	s.sendMsg(&godap.InitializedEvent{Event: s.newEvent("initialized")})
}

// attach connects to one sandbox's debugpy, authorizes with its token, and configures it with the session's
// breakpoints. It replaces the sandbox's previous debuggee, if any.
func (s *session) attach(bf backendFunction) error {
	fn, port, key := bf.LogicalID, bf.DebugPort, sandboxKey(bf.LogicalID, bf.Sandbox)
	s.mu.Lock()
	if old, ok := s.debuggees[key]; (ok && old.port == port) || s.attaching[key] == port {
		s.mu.Unlock()
		return nil
	}
	s.attaching[key] = port
	cfg := s.cfg
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.attaching[key] == port {
			delete(s.attaching, key)
		}
		s.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(s.ctx, attachTimeout)
	defer cancel()
	d, err := dialDebuggee(ctx, fn, port, bf.DebugToken, s.log, s.onDebuggeeEvent)
	if err != nil {
		return err
	}
	d.sandbox = bf.Sandbox
	if err := s.configure(ctx, d, cfg); err != nil {
		d.close()
		return fmt.Errorf("attach to %s sandbox %d: %w", fn, bf.Sandbox, err)
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		d.close()
		return fmt.Errorf("attach to %s: the session ended", fn)
	}
	old := s.debuggees[key]
	s.debuggees[key] = d
	s.mu.Unlock()
	if old != nil {
		s.forget(old)
	}
	s.log.Debug("attached", "function", fn, "sandbox", bf.Sandbox, "port", port)
	return nil
}

// configure runs debugpy's attach handshake: initialize, attach, wait for initialized, replay the session's
// source, function and exception breakpoints, configurationDone, then the attach response.
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
		// One thread stops at a time and resumes alone, so that each invocation pauses and runs on its own
		// (threads.go explains the thread model).
		"stopAllThreadsOnSuspend": false, "steppingResumesAllThreads": false,
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
	lines, _ := breakpointLines(args.bytes()) // setBreakpoints kept them only once they parsed
	merged := s.unverified(path, lines)
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
	ev := &godap.BreakpointEvent{Event: s.newEvent("breakpoint"), Body: godap.BreakpointEventBody{Reason: "changed"}}
	_ = json.Unmarshal(bp.bytes(), &ev.Body.Breakpoint) // an object built by the adapter from debugpy's breakpoint
	s.sendMsg(ev)
}

// forget drops a debuggee that went away: its handles, and the IDE's view of its stopped threads.
func (s *session) forget(d *debuggee) {
	d.close()
	s.mu.Lock()
	if s.lastStop == d {
		s.lastStop = nil
	}
	s.mu.Unlock()
	for _, t := range s.threads.removeWhere(func(t ideThread) bool { return t.d == d }) {
		s.threadGone(t)
	}
	mine := func(r ref) bool { return r.d == d }
	s.frames.drop(mine)
	s.vars.drop(mine)
	s.bpRemote.drop(mine)
}

// onSandboxStart attaches to a sandbox that started after launch (one more for concurrent invocations, or the
// replacement of one that crashed or timed out) and replays the session's breakpoints to it. It runs before the
// sandbox takes its first invocation, which waits for it: a breakpoint set in the IDE holds in every sandbox. The
// sandboxes that run at launch are attached by launch itself.
func (s *session) onSandboxStart(ctx context.Context, sb executor.SandboxInfo) {
	s.mu.Lock()
	p, cfg := s.pipeline, s.cfg
	if p == nil {
		p = s.shared
	}
	s.mu.Unlock()
	if p == nil || sb.DebugPort == 0 || s.ctx.Err() != nil || cfg == nil || cfg.NoDebug {
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	bf := backendFunction{LogicalID: sb.Function, Sandbox: sb.ID, DebugPort: sb.DebugPort, DebugToken: p.debugToken(sb.Function)}
	done := make(chan error, 1)
	go func() { done <- s.attach(bf) }()
	select {
	case err := <-done:
		switch {
		case err == nil:
			s.output("console", fmt.Sprintf("plldb: %s sandbox %d started; debugger attached\n", sb.Function, sb.ID))
		case s.ctx.Err() == nil:
			s.log.Error("attach to a new sandbox", "function", sb.Function, "sandbox", sb.ID, "err", err)
			s.output("important", fmt.Sprintf("plldb: could not attach to sandbox %d of %s: %v\n", sb.ID, sb.Function, err))
		}
	case <-ctx.Done():
	}
}

// onSandboxExit drops the debuggee of a sandbox that ended (reaped when idle, crashed, or timed out), and the
// IDE's threads in it.
func (s *session) onSandboxExit(sb executor.SandboxInfo) {
	key := sandboxKey(sb.Function, sb.ID)
	s.mu.Lock()
	d := s.debuggees[key]
	if d != nil && d.port == sb.DebugPort {
		delete(s.debuggees, key)
	} else {
		d = nil
	}
	s.mu.Unlock()
	if d != nil {
		s.forget(d)
	}
}
