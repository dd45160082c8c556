package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/plldb/plldb/layer/runtimeapi"
)

// Run starts the child runtime behind the proxy's own Runtime API (childAPI, which forwards the child's
// requests to the real one) and serves until the child exits (the result is its exit code) or ctx ends (the
// child gets SIGTERM, then SIGKILL after KillGrace). If the real Runtime API fails, the child meets the failure
// as it would without plldb.
//
// Goroutines: the caller's goroutine waits for the child's exit; the HTTP server runs one per child connection,
// and the child's GET /next handler is the invocation loop in session mode; one goroutine waits for the child;
// in session mode one dials the relay and one drains the link's receive channel, and in selective mode so does
// each link from its session's first valid knock on. Child-less (plldb local), the
// caller's goroutine runs the invocation loop instead. All of them end when Run returns.
func Run(ctx context.Context, cfg Config) (exitCode int, err error) {
	if cfg.RuntimeAPI == "" {
		return 1, errors.New("proxy: no Runtime API address")
	}
	childless := len(cfg.Command) == 0
	if childless && (cfg.Session == nil || !cfg.Session.Strict) {
		return 1, errors.New("proxy: no runtime command (only a strict session can run without one)")
	}
	if childless && cfg.Selective != nil {
		return 1, errors.New("proxy: selective mode needs the runtime command: unknocked invocations run it")
	}
	if cfg.Session != nil && cfg.Selective != nil {
		return 1, errors.New("proxy: selective mode's sessions are Selective.Links, not Session")
	}
	for _, sc := range cfg.Sessions() {
		if sc.Dial == nil {
			return 1, fmt.Errorf("proxy: session %s without a Dial function", sc.SessionID)
		}
	}
	p := newProxy(cfg)
	p.childless = childless
	defer p.real.CloseIdleConnections()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if childless {
		return 0, p.runChildless(ctx)
	}

	// Everything below stops when the child is gone.
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 1, fmt.Errorf("proxy: listen for the runtime: %w", err)
	}
	if p.sess == nil {
		// No session, or selective mode: the child's connections are joined to the real API's, byte for byte;
		// in selective mode the selector reads the API's answers for knocks on the way.
		relay := newTCPRelay(cfg.RuntimeAPI, p.log)
		relay.sel, relay.ctx = p.sel, loopCtx
		go relay.serve(ln)
		defer func() {
			_ = ln.Close()
			relay.shutdown(relayGrace)
		}()
		if p.sel != nil {
			defer p.sel.close() // before the relay's shutdown: the links of knocked invocations go first
			p.logSelective()
		}
	} else {
		api := newChildAPI(p, loopCtx)
		defer api.upstream.CloseIdleConnections()
		hs := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
		serveDone := make(chan struct{})
		go func() {
			defer close(serveDone)
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("runtime api serve", "err", err)
			}
		}()
		defer func() {
			// Answers the child sent are still delivered (each within answerTimeout); polls end with loopCtx.
			sctx, scancel := context.WithTimeout(context.Background(), answerTimeout)
			defer scancel()
			if err := hs.Shutdown(sctx); err != nil {
				_ = hs.Close()
			}
			<-serveDone
		}()
	}

	cmd := p.childCommand(ctx, ln.Addr().String())
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("proxy: start runtime %q: %w", cmd.Path, err)
	}
	p.log.Debug("runtime started", "pid", cmd.Process.Pid, "runtime_api", ln.Addr().String())

	childDone := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(childDone)
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopLoop() // runs before wg.Wait: the goroutines in wg end on it
	if p.sess != nil {
		p.sess.start(loopCtx, &wg)
	}
	<-childDone
	stopLoop()
	code := exitCodeOf(cmd, waitErr)
	p.log.Debug("runtime exited", "code", code)
	return code, nil
}

type proxy struct {
	cfg  Config
	log  *slog.Logger
	real *runtimeapi.Client // the session's and the child-less loop's client of the real Runtime API
	sess *session           // session mode; nil otherwise (selective mode's sessions are the selector's)
	sel  *selector          // selective mode; nil otherwise
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
	p.sess.start(loopCtx, &wg)
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
		real: runtimeapi.NewClient(cfg.RuntimeAPI, nil),
	}
	if cfg.Session != nil {
		p.sess = newSession(p, cfg.Session)
	}
	if cfg.Selective != nil {
		p.sel = newSelector(p, cfg.Selective)
	}
	return p
}

// logSelective says once, at start, how selective mode runs: which sessions' knocks it honours and which have a
// link, or why it honours none. Session ids are not secret; keys are never logged.
func (p *proxy) logSelective() {
	c := p.cfg.Selective
	if c.Verifier == nil {
		p.log.Error("selective settings unusable: every invocation runs the deployed code, and knocks are removed and refused",
			"err", c.Broken)
		return
	}
	var linked, mirrored []string
	for _, l := range c.Links {
		linked = append(linked, l.SessionID)
		if l.Mirror {
			mirrored = append(mirrored, l.SessionID)
		}
		if !slices.Contains(c.Sessions, l.SessionID) {
			p.log.Warn("a session has a relay link but no knock key: none of its knocks can verify, so its link is never dialled",
				"session", l.SessionID)
		}
	}
	p.log.Info("selective mode: only invocations with a valid knock go to a developer", "sessions", strings.Join(c.Sessions, ","),
		"linked_sessions", strings.Join(linked, ","), "mirror_sessions", strings.Join(mirrored, ","))
}

func (p *proxy) childCommand(ctx context.Context, apiAddr string) *exec.Cmd {
	argv := p.cfg.Command
	if p.cfg.PrevWrapper != "" {
		argv = append([]string{p.cfg.PrevWrapper}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = childEnv(p.cfg.Env, apiAddr, p.cfg.PrevWrapper)
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

// relayGrace is how long the pass-through relay lets connections finish after the child exited: an answer
// posted right before the exit is on its way; a poll of a child that died waiting is cut.
const relayGrace = time.Second

// answerTimeout bounds posting one answer to the real Runtime API.
const answerTimeout = 10 * time.Second

// answerContext is for posting an answer that exists: it outlives the child's exit and the proxy's shutdown,
// so an invocation that was answered is never lost on the way out.
func answerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
}

// loop serves invocations to the session alone until ctx ends (child-less mode, where the session is strict
// and takes every invocation).
func (p *proxy) loop(ctx context.Context) error {
	select {
	case <-p.sess.linked:
	case <-ctx.Done():
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
		if err != nil {
			p.log.Warn("malformed invocation", "request_id", inv.RequestID, "err", err)
			p.sess.answerError(ctx, inv.RequestID, "Runtime.InvalidInvocation", "plldb: malformed invocation: "+err.Error())
			continue
		}
		if !p.sess.handle(ctx, inv) {
			p.log.Error("no runtime to fall back to", "request_id", inv.RequestID)
		}
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
