// Package devside is the developer half of a plldb session, shared by `plldb local` and AWS mode: one executor
// (a pool of Python sandboxes) per served function, the dispatcher that runs invocations on them, and the developer's WebSocket link
// to the relay (the embedded gateway locally, the helper stack's API Gateway in AWS).
package devside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
)

// Config configures the developer side.
type Config struct {
	// Functions are the functions to serve; each gets an executor. Name must be the name the function's sandboxes
	// run under (AWS_LAMBDA_FUNCTION_NAME, which their tickets prove): invocations are matched by it.
	Functions []template.Function
	// TemplateDir is where the template lives: a virtualenv there is preferred by FindPython.
	TemplateDir string
	Python      string // interpreter; "" finds the project's virtualenv, then python3
	Region      string
	// Debug starts every executor with debugpy listening on 127.0.0.1; timeouts are then not enforced, since a
	// developer paused at a breakpoint is not a slow handler.
	Debug bool
	// OpenDebugpy lets any local client attach to the debugpys without their token (executor.Spec.OpenDebugpy):
	// only for printing ports to an editor that attaches directly.
	OpenDebugpy bool
	// Env is added to every function's environment (over the template's variables).
	Env map[string]string
	// MaxConcurrency bounds each function's sandboxes (concurrent invocations); 0 → 10. A function's
	// ReservedConcurrentExecutions overrides it, and Concurrency (by logical id) overrides both.
	MaxConcurrency int
	Concurrency    map[string]int
	// IdleTimeout is how long an idle sandbox lives (one per function always stays); 0 → 10 minutes.
	IdleTimeout time.Duration
	// DeveloperCredentials, if set, are the AWS credentials every handler gets (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN): the developer's own, from the SDK's default chain (plldb local;
	// AWS mode with "credentials": "developer"). They are resolved once at Start (handlers get none if they do
	// not resolve, which is logged once) and refreshed when they expire. Nil: each invocation gets the
	// credentials its sandbox sent with it (wire.Invoke.Credentials: the function's execution role, in AWS mode),
	// or none.
	DeveloperCredentials aws.CredentialsProvider
	// Session is the developer's own relay session id. Knocked invocations (selective mode) are run only when their
	// knock names it; with Session empty none is.
	Session string
	Hooks
	Logger *slog.Logger
}

// Hooks let the program around the developer side (the CLI, the debug adapter) hear what it does. Every field is
// optional; the options of plldb local and AWS mode embed them and pass them on unchanged.
type Hooks struct {
	// Observer hears every invocation's start and end.
	Observer Observer
	// OnLog receives every line a handler prints.
	OnLog func(executor.LogLine)
	// OnSandboxStart hears every new sandbox of a function (the first at start, more on demand, replacements
	// after a crash) once its process is ready and before it takes an invocation, so a debugger can attach and
	// set its breakpoints first. It must return when ctx ends.
	OnSandboxStart func(ctx context.Context, sb executor.SandboxInfo)
	// OnSandboxExit hears a sandbox's process end.
	OnSandboxExit func(sb executor.SandboxInfo)
	// BeforeRun runs on an invocation's own goroutine once it is acked and before its handler runs. The debug
	// adapter holds invocations there until the IDE has finished configuring, so the first ones do not run past
	// breakpoints the IDE is still sending. It must return when ctx ends.
	BeforeRun func(ctx context.Context, inv *wire.Invoke)
	// OnMirror hears, in selective mirror mode, each mirrored invocation's local outcome next to what the deployed
	// code answered (FormatMirror makes the console line). It is called once per copy, from a goroutine of its
	// own or the dispatcher's, and must not block for long.
	OnMirror func(MirrorReport)
}

// Served is one function the developer side runs.
type Served struct {
	template.Function
	Exec    *executor.Executor
	Timeout time.Duration
}

// Side is a running developer side. Close stops it.
type Side struct {
	cfg    Config
	log    *slog.Logger
	fns    []*Served
	byName map[string]*Served
	// byDeployed finds a function by the name its sandboxes run under (Name): the name their tickets prove.
	byDeployed map[string]*Served

	// dev holds the developer's credentials when Config.DeveloperCredentials resolved; set before Start returns.
	dev *developerCredentials

	mu   sync.Mutex
	link *wsclient.Client
	disp *dispatcher

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts one executor (and with it the function's first sandbox) per function, in parallel. It returns once all have started, or stops those that
// did and reports every failure.
func Start(ctx context.Context, cfg Config) (s *Side, err error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s = &Side{cfg: cfg, log: log, byName: map[string]*Served{}, byDeployed: map[string]*Served{}, ctx: sctx, cancel: cancel}
	side := s // a failed return sets the named result to nil before this cleanup runs
	defer func() {
		if err != nil {
			_ = side.Close()
		}
	}()
	fns := cfg.Functions
	pythons := make([]string, len(fns))
	for i, fn := range fns {
		python, err := executor.FindPython(cfg.Python, cfg.TemplateDir, fn.CodeDir)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.LogicalID, err)
		}
		pythons[i] = python
	}
	type started struct {
		i   int
		ex  *executor.Executor
		err error
	}
	// The developer's credentials resolve while the sandboxes start (the SDK may ask an SSO portal or the
	// instance metadata service).
	credsDone := make(chan *developerCredentials, 1)
	if cfg.DeveloperCredentials != nil {
		go func() {
			credsDone <- resolveDeveloper(sctx, cfg.DeveloperCredentials, log.With("component", "credentials"))
		}()
	} else {
		credsDone <- nil
	}
	defer func() {
		if err != nil { // a failed start: stop the resolution, so that nothing outlives Start
			cancel()
			<-credsDone
		}
	}()
	results := make(chan started, len(fns))
	for i, fn := range fns {
		go func() {
			ex, err := executor.Start(ctx, s.spec(fn, pythons[i]), s.onLog)
			results <- started{i, ex, err}
		}()
	}
	s.fns = make([]*Served, len(fns))
	var errs []error
	for range fns {
		r := <-results
		fn := fns[r.i]
		if r.err != nil {
			errs = append(errs, fmt.Errorf("start executor for %s: %w", fn.LogicalID, r.err))
			continue
		}
		s.fns[r.i] = &Served{Function: fn, Exec: r.ex, Timeout: time.Duration(fn.Timeout) * time.Second}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, sf := range s.fns {
		s.byName[sf.LogicalID] = sf
		s.byName[sf.Name] = sf
		s.byDeployed[sf.Name] = sf
	}
	s.dev = <-credsDone
	return s, nil
}

func (s *Side) spec(fn template.Function, python string) executor.Spec {
	var layers []string
	for _, l := range fn.Layers {
		if l.PythonDir != "" {
			layers = append(layers, l.PythonDir)
		}
	}
	env := fn.Env
	logging := fn.Logging.RuntimeEnv()
	if len(s.cfg.Env) > 0 || len(logging) > 0 {
		env = make(map[string]string, len(fn.Env)+len(logging)+len(s.cfg.Env))
		for k, v := range fn.Env {
			env[k] = v
		}
		// What Lambda derives from LoggingConfig (the log format and level awslambdaric reads, the log group):
		// Lambda sets these itself, over the function's variables.
		for k, v := range logging {
			env[k] = v
		}
		for k, v := range s.cfg.Env {
			env[k] = v
		}
	}
	limit := s.cfg.MaxConcurrency
	if r := fn.ReservedConcurrency; r != nil && *r > 0 {
		limit = *r // the most Lambda runs at once
	}
	if n, ok := s.cfg.Concurrency[fn.LogicalID]; ok && n > 0 {
		limit = n
	}
	return executor.Spec{
		LogicalID:      fn.LogicalID,
		FunctionName:   fn.Name,
		Handler:        fn.Handler,
		Runtime:        fn.Runtime,
		Region:         s.cfg.Region,
		Version:        "$LATEST",
		CodeDir:        fn.CodeDir,
		LayerDirs:      layers,
		Env:            env,
		MemoryMB:       fn.MemoryMB,
		TimeoutSec:     fn.Timeout,
		Python:         python,
		Debug:          s.cfg.Debug,
		OpenDebugpy:    s.cfg.OpenDebugpy,
		EnforceTimeout: !s.cfg.Debug,
		Logger:         s.log, // the executor names its function in every line
		MaxConcurrency: limit,
		IdleTimeout:    s.cfg.IdleTimeout,
		OnStart:        s.cfg.OnSandboxStart,
		OnExit:         s.cfg.OnSandboxExit,
		ValidJSON:      wire.Valid,
	}
}

func (s *Side) onLog(line executor.LogLine) {
	s.mu.Lock()
	disp := s.disp
	s.mu.Unlock()
	if disp != nil {
		disp.Log(s.ctx, line)
	}
	if s.cfg.OnLog != nil {
		s.cfg.OnLog(line)
	}
}

// Connect dials the relay as the developer (link.Ticket must mint developer tickets) and starts dispatching the
// invocations that arrive. It returns once the link is up.
func (s *Side) Connect(ctx context.Context, link wsclient.Config) error {
	if link.Logger == nil {
		link.Logger = s.log.With("link", "developer") // wsclient adds component=wsclient
	}
	onConnect := link.OnConnect
	link.OnConnect = func(ctx context.Context, c *wsclient.Client) error {
		if onConnect != nil {
			if err := onConnect(ctx, c); err != nil {
				return err
			}
		}
		s.mu.Lock()
		disp := s.disp
		s.mu.Unlock()
		if disp != nil { // a reconnect (the first connection has nothing to send again)
			disp.Reconnected(ctx)
		}
		return nil
	}
	c, err := wsclient.Dial(ctx, link)
	if err != nil {
		return fmt.Errorf("connect the developer side to %s: %w", link.URL, err)
	}
	disp := newDispatcher(dispatchConfig{
		Link:        c,
		Resolve:     s.resolve,
		Observer:    s.cfg.Observer,
		BeforeRun:   s.cfg.BeforeRun,
		Credentials: s.credentialsFor,
		OnMirror:    s.cfg.OnMirror,
		Session:     s.cfg.Session,
		Logger:      s.log.With("component", "dispatch"),
	})
	s.mu.Lock()
	s.link, s.disp = c, disp
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := disp.Run(s.ctx); err != nil {
			s.log.Error("dispatcher stopped", "err", err)
		}
	}()
	return nil
}

// resolve finds the function whose sandboxes run under name. Only the name counts: the logical id an invocation
// carries comes from the function's environment and proves nothing.
func (s *Side) resolve(name string) (target, bool) {
	sf, ok := s.byDeployed[name]
	if !ok {
		return target{}, false
	}
	return target{Runner: sf.Exec, Timeout: sf.Timeout}, true
}

// Functions lists the served functions in the order they were given.
func (s *Side) Functions() []*Served { return s.fns }

// Lookup finds a served function by logical id or name.
func (s *Side) Lookup(name string) (*Served, bool) {
	sf, ok := s.byName[name]
	return sf, ok
}

// Disconnect closes the developer link and stops dispatching; executors keep running until Close.
func (s *Side) Disconnect() {
	s.cancel()
	s.mu.Lock()
	link := s.link
	s.mu.Unlock()
	if link != nil {
		_ = link.Close()
	}
	s.wg.Wait()
}

// Close disconnects and stops every executor.
func (s *Side) Close() error {
	s.Disconnect()
	var errs []error
	for _, sf := range s.fns {
		if sf != nil && sf.Exec != nil {
			if err := sf.Exec.Close(); err != nil {
				errs = append(errs, fmt.Errorf("stop executor %s: %w", sf.LogicalID, err))
			}
		}
	}
	return errors.Join(errs...)
}
