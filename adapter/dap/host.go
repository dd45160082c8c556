package dap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	godap "github.com/google/go-dap"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/bridge/wire"
)

// Host is a backend that belongs to a command rather than to a debug session: `plldb local --debug --listen`
// starts its pipeline at once, `plldb attach --listen` attaches to its stack at the first attach request. DAP
// sessions that send attach bind to it one at a time: while one is bound the backend's invocations, output
// and executor restarts reach that session; when it disconnects (or goes away) only the IDE detaches:
// debugpy drops the IDE's breakpoints and resumes paused threads, and the backend keeps serving, with no
// debugger, until the next attach or the command's Close.
//
// The backend's hooks are the host's (Hooks), which forward to the bound session, if any: with none,
// invocations run at once and are not held for a configurationDone.
type Host struct {
	log      *slog.Logger
	extra    devside.Hooks // the command's own observer and log printer, called as well
	defaults map[string]any
	onStart  func(banner string)

	ctx    context.Context // the backend's lifetime
	cancel context.CancelFunc

	mu       sync.Mutex
	b        backend
	owner    *session // the session bound to the host (attach), or the one that launched beside it
	attached bool     // owner attached (rather than launched a backend of its own)
	closed   bool
}

// HostOptions configure a Host.
type HostOptions struct {
	Logger *slog.Logger
	// Observer and OnLog hear every invocation and handler line as well as the bound session (the command
	// prints them).
	Observer devside.Observer
	OnLog    func(executor.LogLine)
	// OnMirror hears every mirrored invocation's two results as well as the bound session.
	OnMirror func(devside.MirrorReport)
	// LaunchDefaults start the backend at the first attach when the command has not given one (SetPipeline):
	// `plldb attach --listen`'s flags, "mode": "aws".
	LaunchDefaults map[string]any
	// OnStart, when set, hears the banner of a backend the first attach started (the command prints it).
	OnStart func(banner string)
}

// NewHost returns a host with no backend yet: give it one with SetPipeline, or let the first attach start one
// from opts.LaunchDefaults.
func NewHost(opts HostOptions) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{log: opts.Logger, extra: devside.Hooks{Observer: opts.Observer, OnLog: opts.OnLog, OnMirror: opts.OnMirror}, defaults: opts.LaunchDefaults, onStart: opts.OnStart, ctx: ctx, cancel: cancel}
}

// Hooks are the hooks a backend started for the host must use (local.Options.Hooks).
func (h *Host) Hooks() devside.Hooks {
	return devside.Hooks{Observer: hostObserver{h}, OnLog: h.onLog, OnSandboxStart: h.onSandboxStart, OnSandboxExit: h.onSandboxExit, BeforeRun: h.beforeRun, OnMirror: h.onMirror}
}

// SetPipeline makes p, started with h.Hooks() and debugging on, the host's backend.
func (h *Host) SetPipeline(p *local.Pipeline) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.b = localBackend{p}
}

// Running reports whether the host has a backend.
func (h *Host) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b != nil
}

// Close closes the backend (answering in-flight invocations, restoring an AWS session's functions); later
// attaches are refused. Stop the listener first (its Serve returns once every session has detached), so that
// no IDE is left attached to functions that are gone.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	b := h.b
	h.b = nil
	h.mu.Unlock()
	defer h.cancel()
	if b == nil {
		return nil
	}
	return b.close(ctx)
}

// errHostBusy is the answer to a second IDE while one is connected.
var errHostBusy = errors.New("another IDE is connected to this plldb session: disconnect it first (plldb serves one debugger at a time)")

// bind binds s to the host, starting the backend from the launch defaults when there is none yet.
func (h *Host) bind(s *session) (backend, error) {
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return nil, errors.New("this plldb session is shutting down")
	case h.owner != nil:
		h.mu.Unlock()
		return nil, errHostBusy
	}
	h.owner, h.attached = s, true
	b := h.b
	h.mu.Unlock()
	if b != nil {
		return b, nil
	}
	fail := func(err error) (backend, error) {
		h.release(s)
		return nil, err
	}
	if h.defaults == nil {
		return fail(errors.New("this plldb session has nothing to attach to"))
	}
	cfg, err := parseLaunchWith(nil, h.defaults)
	if err != nil {
		return fail(err)
	}
	// Starting takes a while (an AWS attach); a second IDE meanwhile finds the host bound. The backend's hooks
	// already reach s, whose debuggees are not attached yet.
	// The defaults are the command's flags: the IDE's attach request has no "functions" to look for.
	b, err = startBackendWith(h.ctx, cfg, h.Hooks(), h.log, "plldb attach --functions")
	if err != nil {
		return fail(err)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		closeCtx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		defer cancel()
		_ = b.close(closeCtx)
		return fail(errors.New("this plldb session is shutting down"))
	}
	h.b = b
	h.mu.Unlock()
	if h.onStart != nil {
		h.onStart(b.banner())
	}
	return b, nil
}

// claim reserves the host's one connection for a session that launches a backend of its own (`plldb attach
// --listen` before any attach): it fails when the host already has a backend or another session.
func (h *Host) claim(s *session) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.b != nil: // first: even with no IDE connected, a launch here is never possible
		return fmt.Errorf(`this plldb already runs the functions (%s): send "request": "attach" instead of launch`, strings.TrimSuffix(strings.TrimPrefix(h.b.banner(), "plldb: "), "\n"))
	case h.owner != nil:
		return errHostBusy
	}
	h.owner, h.attached = s, false
	return nil
}

// release unbinds s (its IDE disconnected or went away).
func (h *Host) release(s *session) {
	h.mu.Lock()
	if h.owner == s {
		h.owner, h.attached = nil, false
	}
	h.mu.Unlock()
}

// bound is the session bound to the host (not one that merely claimed it for a launch of its own).
func (h *Host) bound() *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.attached {
		return h.owner
	}
	return nil
}

type hostObserver struct{ h *Host }

func (o hostObserver) Started(inv *wire.Invoke) {
	if o.h.extra.Observer != nil {
		o.h.extra.Observer.Started(inv)
	}
	if s := o.h.bound(); s != nil {
		observer{s}.Started(inv)
	}
}

func (o hostObserver) Finished(inv *wire.Invoke, out executor.Outcome, err error) {
	if o.h.extra.Observer != nil {
		o.h.extra.Observer.Finished(inv, out, err)
	}
	if s := o.h.bound(); s != nil {
		observer{s}.Finished(inv, out, err)
	}
}

func (h *Host) onLog(line executor.LogLine) {
	if h.extra.OnLog != nil {
		h.extra.OnLog(line)
	}
	if s := h.bound(); s != nil {
		s.onLog(line)
	}
}

func (h *Host) onMirror(r devside.MirrorReport) {
	if h.extra.OnMirror != nil {
		h.extra.OnMirror(r)
	}
	if s := h.bound(); s != nil {
		s.onMirror(r)
	}
}

func (h *Host) onSandboxStart(ctx context.Context, sb executor.SandboxInfo) {
	if s := h.bound(); s != nil {
		s.onSandboxStart(ctx, sb)
	}
}

func (h *Host) onSandboxExit(sb executor.SandboxInfo) {
	if s := h.bound(); s != nil {
		s.onSandboxExit(sb)
	}
}

// beforeRun holds an invocation until the bound session's IDE has configured; with no IDE it runs at once.
func (h *Host) beforeRun(ctx context.Context, inv *wire.Invoke) {
	if s := h.bound(); s != nil {
		s.holdUntilConfigured(ctx, inv)
	}
}

// announcePaused shows the IDE that just attached the invocations already paused in debugpy: a stopped event
// for each, after its configurationDone. A detach resumes paused threads, so normally there are none; but a
// detach whose disconnect never reached debugpy (it was too busy to answer, or the connection broke) leaves
// them paused, and nobody would ever see or resume them.
//
// debugpy does not say whether a thread is suspended, and gives a running thread's stack too, but only after
// waiting 0.5 s for it to suspend (pydevd's InternalGetThreadStack): a stackTrace answered sooner than
// pausedProbeMax is a paused thread's. A paused thread whose answer is slower (a machine that busy) is missed,
// as before this check; a running one is never reported paused. Everything runs on the debuggees' readers
// (startFunc callbacks), where stops are handled too: a thread whose own stop is being resolved, or that the
// IDE already knows stopped, is left to that.
func (s *session) announcePaused() {
	for _, d := range s.current() {
		_ = d.startFunc("threads", nil, func(resp obj, ok bool) {
			if !ok || !resp.boolean("success") {
				return
			}
			for _, dt := range debugpyThreads(resp) {
				if !hiddenThread(dt.Name) {
					s.probePaused(d, dt)
				}
			}
		})
	}
}

// pausedProbeMax is below debugpy's 0.5 s wait for a running thread's stack (see announcePaused).
const pausedProbeMax = 400 * time.Millisecond

func (s *session) probePaused(d *debuggee, dt debugpyThread) {
	start := time.Now()
	_ = d.startFunc("stackTrace", mustJSON(map[string]any{"threadId": dt.ID, "levels": 1}), func(resp obj, ok bool) {
		if !ok || !resp.boolean("success") || time.Since(start) >= pausedProbeMax || d.resolving {
			return
		}
		if t, known := s.threads.current(d, dt.ID); known && t.stopped {
			return
		}
		t := s.markStopped(d, dt.ID, dt.Name)
		s.log.Info("an invocation was paused before the IDE attached", "function", d.fn, "thread", dt.Name)
		s.sendMsg(&godap.StoppedEvent{Event: s.newEvent("stopped"), Body: godap.StoppedEventBody{
			Reason: "pause", Description: "Paused before this IDE attached", ThreadId: t.id, AllThreadsStopped: false,
		}})
	})
}
