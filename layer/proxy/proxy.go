package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plldb/plldb/layer/runtimeapi"
)

// Run starts the child runtime and serves invocations until the child exits (the result is its exit code),
// ctx ends (the child gets SIGTERM, then SIGKILL after KillGrace) or the real Runtime API fails.
//
// Goroutines: the caller's goroutine runs the invocation loop; one goroutine waits for the child; one forwards
// a child's init error; in session mode one dials the relay and one drains the link's receive channel. All of
// them end when Run returns.
func Run(ctx context.Context, cfg Config) (exitCode int, err error) {
	if cfg.RuntimeAPI == "" {
		return 1, errors.New("proxy: no Runtime API address")
	}
	childless := len(cfg.Command) == 0
	if childless && (cfg.Session == nil || !cfg.Session.Strict) {
		return 1, errors.New("proxy: no runtime command (only a strict session can run without one)")
	}
	if cfg.Session != nil && cfg.Session.Dial == nil {
		return 1, errors.New("proxy: session mode without a Dial function")
	}
	p := newProxy(cfg)
	p.childless = childless
	defer p.real.CloseIdleConnections()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if childless {
		return 0, p.runChildless(ctx)
	}

	if err := p.srv.Start(ctx); err != nil {
		return 1, fmt.Errorf("proxy: %w", err)
	}
	defer p.srv.Close()

	cmd := p.childCommand(ctx)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("proxy: start runtime %q: %w", cmd.Path, err)
	}
	p.log.Debug("runtime started", "pid", cmd.Process.Pid, "runtime_api", p.srv.Addr())

	childDone := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(childDone)
	}()
	// Everything below stops when the child is gone.
	loopCtx, stopLoop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopLoop() // runs first: the goroutines in wg end on it
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-childDone:
			stopLoop()
		case <-loopCtx.Done():
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.forwardInitError(loopCtx)
	}()
	if p.sess != nil {
		p.startSession(loopCtx, &wg)
	}

	loopErr := p.loop(loopCtx)
	if loopErr != nil {
		// The real Runtime API is broken: nothing more can be served, so the child must not linger.
		cancel()
	}
	<-childDone
	code := exitCodeOf(cmd, waitErr)
	if loopErr != nil {
		return code, loopErr
	}
	p.log.Debug("runtime exited", "code", code)
	return code, nil
}

type proxy struct {
	cfg  Config
	log  *slog.Logger
	srv  *runtimeapi.Server
	real *runtimeapi.Client
	sess *session
	// childless: no original runtime runs beside the proxy (plldb local's emulated sandboxes, where the
	// developer side is the only runtime). Every invocation goes to the session, strictly.
	childless bool
}

// runChildless serves invocations to the session alone until ctx ends.
func (p *proxy) runChildless(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	loopCtx, stop := context.WithCancel(ctx)
	defer stop()
	p.startSession(loopCtx, &wg)
	return p.loop(loopCtx)
}

func newProxy(cfg Config) *proxy {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.ChildStdout == nil {
		cfg.ChildStdout = os.Stdout
	}
	if cfg.ChildStderr == nil {
		cfg.ChildStderr = os.Stderr
	}
	if cfg.KillGrace <= 0 {
		cfg.KillGrace = 2 * time.Second
	}
	p := &proxy{
		cfg:  cfg,
		log:  cfg.Logger,
		srv:  runtimeapi.NewServer(runtimeapi.ServerOptions{Addr: "127.0.0.1:0", Logger: cfg.Logger}),
		real: runtimeapi.NewClient(cfg.RuntimeAPI, nil),
	}
	if cfg.Session != nil {
		p.sess = newSession(p, cfg.Session)
	}
	return p
}

func (p *proxy) childCommand(ctx context.Context) *exec.Cmd {
	argv := p.cfg.Command
	if p.cfg.PrevWrapper != "" {
		argv = append([]string{p.cfg.PrevWrapper}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = childEnv(p.cfg.Env, p.srv.Addr(), p.cfg.PrevWrapper)
	cmd.Stdin = nil
	cmd.Stdout = p.cfg.ChildStdout
	cmd.Stderr = p.cfg.ChildStderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = p.cfg.KillGrace
	return cmd
}

// childEnv is the environment the runtime would have had without plldb, but with the proxy as its Runtime API.
func childEnv(base []string, addr, prevWrapper string) []string {
	env := make([]string, 0, len(base)+2)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if k == "AWS_LAMBDA_RUNTIME_API" || k == "AWS_LAMBDA_EXEC_WRAPPER" || strings.HasPrefix(k, "PLLDB_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "AWS_LAMBDA_RUNTIME_API="+addr)
	if prevWrapper != "" {
		env = append(env, "AWS_LAMBDA_EXEC_WRAPPER="+prevWrapper)
	}
	return env
}

func exitCodeOf(cmd *exec.Cmd, waitErr error) int {
	if cmd.ProcessState == nil {
		return 1
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := cmd.ProcessState.ExitCode(); code >= 0 {
		return code
	}
	if waitErr != nil {
		return 1
	}
	return 0
}

// forwardInitError relays the child's /init/error to the real Runtime API, so an import failure looks to
// Lambda exactly as it would without plldb.
func (p *proxy) forwardInitError(ctx context.Context) {
	var r runtimeapi.Response
	select {
	case r = <-p.srv.InitError():
	case <-p.srv.Ready():
		return
	case <-ctx.Done():
		// A runtime that reports its init error exits right after; the report is already queued then.
		select {
		case r = <-p.srv.InitError():
		default:
			return
		}
	}
	pctx, cancel := answerContext(ctx)
	defer cancel()
	if err := p.real.InitError(pctx, r.Payload, r.ErrorType); err != nil {
		p.log.Error("forward init error", "err", err)
	}
}

// answerTimeout bounds posting one answer to the real Runtime API.
const answerTimeout = 10 * time.Second

// answerContext is for posting an answer that exists: it outlives the child's exit and the proxy's shutdown,
// so an invocation that was answered is never lost on the way out.
func answerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
}

// loop serves invocations until ctx ends. It asks the real API for work only once the child asked for its
// first invocation, so the child's initialisation stays Lambda's init phase.
func (p *proxy) loop(ctx context.Context) error {
	ready := p.srv.Ready()
	if p.childless {
		ready = p.sess.linked
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return nil
	}
	if p.sess != nil && !p.childless && !p.waitLinked(ctx) {
		return nil
	}
	for {
		inv, err := p.real.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && (inv.RequestID == "" || !errors.Is(err, runtimeapi.ErrMalformed)) {
			return fmt.Errorf("proxy: %w", err)
		}
		if err != nil && p.childless {
			p.log.Warn("malformed invocation", "request_id", inv.RequestID, "err", err)
			p.sess.answerError(ctx, inv.RequestID, "Runtime.InvalidInvocation", "plldb: malformed invocation: "+err.Error())
			continue
		}
		if err != nil {
			// The child gets the raw headers and judges them itself, as it would without plldb.
			p.log.Warn("malformed invocation, passing it through", "request_id", inv.RequestID, "err", err)
			p.passThrough(ctx, inv)
			continue
		}
		if p.sess == nil {
			p.passThrough(ctx, inv)
			continue
		}
		p.sess.handle(ctx, inv)
	}
}

// waitLinked holds the first /next, and so Lambda's init phase, until the relay link is up or
// SessionConfig.ConnectWait passed: the dial runs in the background during init, and without this wait the first
// invocation after an attach, which is the one the developer is waiting for, would fall back to the deployed code
// whenever the child initialises faster than the relay answers. It reports false when ctx ended.
func (p *proxy) waitLinked(ctx context.Context) bool {
	wait := p.sess.cfg.ConnectWait
	if wait == 0 {
		wait = DefaultConnectWait
	}
	if wait < 0 {
		return true
	}
	select {
	case <-p.sess.linked:
		return true
	default:
	}
	p.log.Debug("runtime initialised; holding the first invocation for the plldb relay", "up_to", wait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-p.sess.linked:
	case <-t.C:
		p.log.Warn("the plldb relay is not connected yet; invocations fall back until it is", "waited", wait)
	case <-ctx.Done():
		return false
	}
	return true
}

// passThrough hands inv to the child runtime unchanged and posts its answer, unchanged, to the real API.
func (p *proxy) passThrough(ctx context.Context, inv runtimeapi.Invocation) {
	resp, err := p.srv.Invoke(ctx, inv)
	if err != nil {
		// Only when the child died or we are stopping: Lambda reports the exit itself.
		p.log.Debug("pass-through not answered", "request_id", inv.RequestID, "err", err)
		return
	}
	hdr := forwardHeaders(resp.Header)
	pctx, cancel := answerContext(ctx)
	defer cancel()
	if resp.Error {
		err = p.real.Error(pctx, inv.RequestID, resp.Payload, resp.ErrorType, hdr)
	} else {
		err = p.real.Respond(pctx, inv.RequestID, resp.Payload, hdr)
	}
	if err != nil {
		p.log.Error("post answer", "request_id", inv.RequestID, "err", err)
	}
}

// hopHeaders belong to the child's connection to us, not to the answer.
var hopHeaders = map[string]bool{
	"Content-Length": true, "Host": true, "Connection": true, "Keep-Alive": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Accept-Encoding": true, "Proxy-Connection": true,
	"Proxy-Authorization": true,
}

func forwardHeaders(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		if !hopHeaders[k] {
			out[k] = v
		}
	}
	return out
}
