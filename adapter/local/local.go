// Package local runs the whole plldb pipeline on one machine, with no AWS account and no Docker: the embedded
// gateway running the real relay handlers, one emulated Lambda sandbox per concurrent invocation running the real
// layer proxy against an in-process Runtime API, the developer side (dispatcher and Python executors), and
// Lambda's Invoke API in front. An invocation through it crosses exactly the code a cloud invocation crosses.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/bridge/gateway"
	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// Options configure a local pipeline.
type Options struct {
	Template   string
	Parameters map[string]string
	// Functions limits the served functions to these logical ids; empty serves every supported function.
	Functions []string
	Python    string // interpreter; "" finds the project's virtualenv, then python3
	Host      string // Invoke API host; "" → 127.0.0.1; anything but loopback needs AllowRemote
	Port      int    // Invoke API port; 0 → any free port (the CLI defaults to 3001)
	Region    string // "" → us-east-1
	// Debug starts every executor with debugpy listening on 127.0.0.1; local timeouts are then not enforced,
	// since a developer paused at a breakpoint is not a slow handler.
	Debug bool
	// OpenDebugpy lets any local client attach to the debugpys without their token (executor.Spec.OpenDebugpy),
	// for `plldb local --debug`, which prints the ports for an editor to attach to directly.
	OpenDebugpy bool
	// Selective runs each function as two executors (selective.go): invocations carrying a valid knock from this
	// pipeline's session (KnockSession) go through the relay to the usual executor, under debugpy with Debug;
	// every other invocation runs at full speed on a second executor without debugpy, with no relay hop. The
	// session's key file (adapter/knockkey, audience knockkey.LocalAudience) is written at Start for
	// `plldb knock --local` and removed by Close.
	Selective bool
	// Mirror (with Selective) answers knocked invocations too with the plain executor, "the deployed code", and
	// runs a copy of each on the debug executor for the developer alone (mirror.go): the caller never waits for a
	// breakpoint, and Hooks.OnMirror hears both results.
	Mirror bool
	// PlainObserver, if set, hears the start and end of each invocation selective mode runs on a plain executor
	// (Hooks.Observer hears only those that go through the developer side, which a debugger may be holding):
	// `plldb local` prints both alike, while a debug adapter has no debuggee to show for the plain ones.
	PlainObserver devside.Observer
	// MaxConcurrency caps the concurrent invocations of each function without ReservedConcurrentExecutions in
	// the template (a reservation is the function's cap instead); 0 → DefaultMaxConcurrency. Past its limit a
	// synchronous invocation is throttled (429), an Event invocation waits in the queue.
	MaxConcurrency int
	// AccountConcurrency is Lambda's account-wide concurrency quota, shared by the functions without a
	// reservation once the reservations are taken out; 0 → DefaultAccountConcurrency.
	AccountConcurrency int
	// EventQueueBytes bounds the payload bytes of accepted Event invocations that have not finished (queued,
	// running or waiting for a retry); past it an Event invocation is refused with 429. 0 → DefaultEventQueueBytes.
	EventQueueBytes int
	// EventRetryDelays are the waits before the first and later retries of a failed Event invocation; nil →
	// DefaultEventRetryDelays (Lambda's). How many retries there are is the function's
	// EventInvokeConfig.MaximumRetryAttempts, else Lambda's 2.
	EventRetryDelays []time.Duration
	// IdleTimeout is how long a developer sandbox may stay idle before it is stopped (one per function always
	// stays); 0 → 10 minutes.
	IdleTimeout time.Duration
	devside.Hooks
	// Env is added to every function's environment (over the template's variables).
	Env map[string]string
	// Credentials are the developer's AWS credentials (awsconfig.DeveloperCredentials), which every handler gets
	// as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, as Lambda gives a handler its execution
	// role's (devside.Config.DeveloperCredentials). Nil: handlers have none.
	Credentials aws.CredentialsProvider
	// AllowRemote lets Host be a non-loopback address (reachable from other machines). Token is then required:
	// every Invoke API request must carry it (Authorization: Bearer, or as the AWS access key id), since whoever
	// can invoke runs the developer's code. Without AllowRemote the API checks Host instead (see guard).
	AllowRemote bool
	Token       string
	Logger      *slog.Logger

	// Test hooks (set by export_test.go only): developerURL rewrites the gateway URL the developer link dials
	// (the soak puts a connection-cutting forwarder there); wrapRoutes wraps the relay handlers the gateway runs.
	developerURL func(gatewayURL string) string
	wrapRoutes   func(gateway.Routes) gateway.Routes
}

// servedFunction is one function of the template that this pipeline runs.
type servedFunction struct {
	template.Function
	exec    *executor.Executor
	timeout time.Duration
	// plain and verifier are set in selective mode: the executor without debugpy that runs unknocked
	// invocations, and the verifier of this function's knocks.
	plain    *executor.Executor
	verifier *knock.Verifier

	// Concurrency (limits.go): limit is set once at start; slots is guarded by the pipeline's limits lock.
	limit    int
	reserved bool // limit is the template's ReservedConcurrentExecutions
	slots    int  // invocations running or starting

	mu   sync.Mutex
	idle []*sandbox
	live map[*sandbox]struct{} // every sandbox whose proxy has not stopped, idle or busy
}

// Pipeline is a running local pipeline. Close stops it.
type Pipeline struct {
	opts     Options
	log      *slog.Logger
	tpl      *template.Template
	fns      []*servedFunction
	byName   map[string]*servedFunction
	gw       *gateway.Gateway
	store    *relay.MemoryStore
	session  relay.Session
	audience string
	dev      *devside.Side
	// Selective mode (selective.go): the plain executors' developer side, the knock session, and the log
	// buffers of the unknocked invocations running, by request id.
	plainDev  *devside.Side
	knocks    *knockkey.Session
	plainLogs sync.Map
	mirrors   mirrorLinks // Mirror: the function connections that carry copies
	// reports holds, by request id, what the REPORT line needs from the developer sandbox that ran the
	// invocation (a reportFacts): an empty entry from the START line, filled in by the developer side's answer
	// (see sandboxFacts), taken by the REPORT line.
	reports sync.Map
	ln      net.Listener
	srv     *http.Server
	lim     limits
	events  *eventQueue
	account string    // the account id in ARNs: the template's AWS::AccountId
	started time.Time // LastModified of every function, as GetFunctionConfiguration reports it

	ctx    context.Context // lives until Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start reads the template, starts the executors and the relay, and serves the Invoke API. It returns once an
// invocation can be served.
func Start(ctx context.Context, opts Options) (p *Pipeline, err error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	opts.defaults()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := checkExposure(opts); err != nil {
		return nil, err
	}
	if opts.Mirror && !opts.Selective {
		return nil, errors.New("mirror mode needs selective mode: only knocked invocations are mirrored")
	}
	params := map[string]string{"AWS::Region": opts.Region}
	for k, v := range opts.Parameters {
		params[k] = v
	}
	tpl, err := template.LoadWith(opts.Template, template.LoadOptions{Parameters: params})
	if err != nil {
		return nil, err
	}
	fns, err := selectFunctions(tpl, opts.Functions)
	if err != nil {
		return nil, err
	}
	if err := checkReservations(fns, opts); err != nil {
		return nil, err
	}

	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p = &Pipeline{opts: opts, log: log, tpl: tpl, byName: map[string]*servedFunction{}, ctx: pctx, cancel: cancel,
		account: template.DefaultAccountID, started: time.Now().UTC()}
	if acct := params["AWS::AccountId"]; acct != "" {
		p.account = acct
	}
	pipeline := p // a failed return sets the named result to nil before this cleanup runs
	defer func() {
		if err != nil {
			_ = pipeline.Close(context.Background())
		}
	}()

	if err := p.startRelay(ctx); err != nil {
		return nil, err
	}
	if err := p.startExecutors(ctx, fns); err != nil {
		return nil, err
	}
	if err := p.startSelective(ctx, fns); err != nil {
		return nil, err
	}
	p.setupLimits()
	p.events = newEventQueue(p)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.events.loop(p.ctx)
	}()
	if err := p.connectDeveloper(ctx); err != nil {
		return nil, err
	}
	if err := p.serveInvokeAPI(); err != nil {
		return nil, err
	}
	if err := p.saveKnockSession(); err != nil {
		return nil, err
	}
	return p, nil
}

// defaults fills in the options left zero.
func (o *Options) defaults() {
	if o.MaxConcurrency <= 0 {
		o.MaxConcurrency = DefaultMaxConcurrency
	}
	if o.AccountConcurrency <= 0 {
		o.AccountConcurrency = DefaultAccountConcurrency
	}
	if o.EventQueueBytes <= 0 {
		o.EventQueueBytes = DefaultEventQueueBytes
	}
	if o.EventRetryDelays == nil {
		o.EventRetryDelays = DefaultEventRetryDelays
	}
}

// checkExposure refuses an Invoke API reachable from other machines unless it was asked for, and then only
// with a token.
func checkExposure(opts Options) error {
	if opts.AllowRemote {
		if len(opts.Token) < 16 {
			return errors.New("an Invoke API open to other machines (AllowRemote) needs a token of at least 16 characters")
		}
		return nil
	}
	if !IsLoopbackHost(opts.Host) {
		return fmt.Errorf("Invoke API host %q is not a loopback address: the API runs your functions, and on %q other machines could call it. Use 127.0.0.1 (the default; forward the port over SSH to reach it from elsewhere), or allow it explicitly with --allow-remote, which requires a token on every request", opts.Host, opts.Host)
	}
	return nil
}

func selectFunctions(tpl *template.Template, want []string) ([]template.Function, error) {
	if len(want) == 0 {
		fns := tpl.Supported()
		if len(fns) == 0 {
			return nil, fmt.Errorf("%s: no function plldb can serve (only Python runtimes with local code are supported)", tpl.Path)
		}
		return fns, nil
	}
	var fns []template.Function
	for _, name := range want {
		fn, ok := tpl.Function(name)
		if !ok {
			var have []string
			for _, f := range tpl.Functions {
				have = append(have, f.LogicalID)
			}
			return nil, &template.FunctionsError{Err: fmt.Errorf("%s: no function %q in the template; its functions: %s", tpl.Path, name, strings.Join(have, ", "))}
		}
		if !fn.Supported {
			return nil, &template.FunctionsError{Err: fmt.Errorf("%s: function %s: %s", tpl.Path, fn.LogicalID, fn.Reason)}
		}
		fns = append(fns, *fn)
	}
	return fns, nil
}

func (p *Pipeline) startRelay(ctx context.Context) error {
	store := relay.NewMemoryStore()
	p.store = store
	p.session = relay.NewSession("local-"+randomID(6), ownerName(), time.Time{})
	store.PutSession(p.session)
	p.audience = "plldb-local"
	p.gw = gateway.New(gateway.Config{Logger: p.log}, nil) // it logs as component=gateway
	var routes gateway.Routes = &relay.Handlers{Store: store, Conns: p.gw, Audience: p.audience, Logger: p.log.With("component", "relay")}
	if p.opts.wrapRoutes != nil {
		routes = p.opts.wrapRoutes(routes)
	}
	p.gw.SetRoutes(routes)
	// The gateway lives until Close stops it last, after every link has said goodbye; not as long as the
	// caller's start-up context, nor the pipeline's context, which Close cancels first.
	if err := p.gw.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start embedded gateway: %w", err)
	}
	return nil
}

func (p *Pipeline) startExecutors(ctx context.Context, fns []template.Function) error {
	dev, err := devside.Start(ctx, devside.Config{
		Functions:   fns,
		TemplateDir: filepath.Dir(p.tpl.Path),
		Python:      p.opts.Python,
		Region:      p.opts.Region,
		Debug:       p.opts.Debug,
		OpenDebugpy: p.opts.OpenDebugpy,
		Env:         p.opts.Env,
		// Each function's developer sandboxes are as many as its invocations can be at once.
		MaxConcurrency:       p.opts.MaxConcurrency,
		Concurrency:          Concurrencies(fns, p.opts),
		IdleTimeout:          p.opts.IdleTimeout,
		DeveloperCredentials: p.opts.Credentials,
		Hooks:                p.hooks(),
		Logger:               p.log,
	})
	if err != nil {
		return err
	}
	p.dev = dev
	for _, d := range dev.Functions() {
		sf := &servedFunction{Function: d.Function, exec: d.Exec, timeout: d.Timeout, live: map[*sandbox]struct{}{}}
		p.fns = append(p.fns, sf)
		p.byName[sf.LogicalID] = sf
		p.byName[sf.Name] = sf
	}
	return nil
}

// connectDeveloper connects the developer side to the gateway exactly as `plldb attach` connects to the cloud
// relay, and starts dispatching.
func (p *Pipeline) connectDeveloper(ctx context.Context) error {
	peer := "developer-" + randomID(4)
	url := p.gw.URL()
	if p.opts.developerURL != nil {
		url = p.opts.developerURL(url)
	}
	err := p.dev.Connect(ctx, wsclient.Config{
		URL:    url,
		Ticket: p.ticketer(wire.RoleDeveloper, "", peer),
		Logger: p.log.With("link", "developer"), // wsclient adds component=wsclient
	})
	if err != nil {
		return fmt.Errorf("connect developer side to the embedded gateway: %w", err)
	}
	return nil
}

// ticketer mints the tickets of one connection: the developer's, or (function != "") an emulated sandbox's, with
// that function's own key as attach gives it in the cloud.
func (p *Pipeline) ticketer(role wire.Role, function, peer string) func(context.Context) (string, error) {
	key := p.session.Keys[role]
	if role == wire.RoleFunction {
		key = ticket.FunctionKey(key, function)
	}
	return func(context.Context) (string, error) {
		return ticket.Mint(key, ticket.Claims{Session: p.session.ID, Role: role, Function: function, Peer: peer, Audience: p.audience})
	}
}

func hello(h wire.Hello) func(context.Context, *wsclient.Client) error {
	return func(ctx context.Context, c *wsclient.Client) error {
		env, err := wire.NewEnvelope(wire.TypeHello, "", h)
		if err != nil {
			return err
		}
		return c.Send(ctx, env)
	}
}

func (p *Pipeline) serveInvokeAPI() error {
	addr := net.JoinHostPort(p.opts.Host, strconv.Itoa(p.opts.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for the Invoke API on %s: %w", addr, err)
	}
	p.ln = ln
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("Invoke API address %s: %w", ln.Addr(), err)
	}
	g := guard{port: port}
	if p.opts.AllowRemote {
		g.token = p.opts.Token
	}
	p.srv = &http.Server{Handler: newInvokeAPI(p, p.log, g), ReadHeaderTimeout: 10 * time.Second}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("Invoke API stopped", "err", err)
		}
	}()
	return nil
}

// Endpoint is the Invoke API's base URL, for --endpoint-url.
func (p *Pipeline) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Functions lists the served functions.
func (p *Pipeline) Functions() []template.Function {
	out := make([]template.Function, len(p.fns))
	for i, sf := range p.fns {
		out[i] = sf.Function
	}
	return out
}

// Template is the template the pipeline serves.
func (p *Pipeline) Template() *template.Template { return p.tpl }

// Executor returns the executor of a served function (by logical id or name).
func (p *Pipeline) Executor(name string) (*executor.Executor, bool) {
	sf, ok := p.byName[name]
	if !ok {
		return nil, false
	}
	return sf.exec, true
}

// Invoke runs one invocation through the whole pipeline, as the Invoke API does. function is what the API's
// FunctionName takes (a logical id, name or ARN, with an optional :qualifier), and req.Qualifier what its
// Qualifier parameter takes.
func (p *Pipeline) Invoke(ctx context.Context, function string, req InvokeRequest) (InvokeResponse, error) {
	var query []string
	if req.Qualifier != "" {
		query = []string{req.Qualifier}
	}
	sf, ref, aerr := resolveRef(p, function, query)
	if aerr != nil {
		return InvokeResponse{}, fmt.Errorf("invoke %q (served: %s): %w", function, strings.Join(p.names(), ", "), aerr)
	}
	req.Qualifier = ref.qualifier
	return p.invoke(ctx, sf, req)
}

func (p *Pipeline) names() []string {
	var out []string
	for _, sf := range p.fns {
		out = append(out, sf.LogicalID)
	}
	return out
}

func (p *Pipeline) find(name string) (*servedFunction, string) {
	if sf, ok := p.byName[name]; ok {
		return sf, ""
	}
	fn, ok := p.tpl.Function(name)
	switch {
	case !ok:
		return nil, ""
	case !fn.Supported:
		return nil, fn.Reason
	}
	return nil, fmt.Sprintf("it is not among the functions this plldb local was started to serve (%s)", strings.Join(p.names(), ", "))
}

func (p *Pipeline) served() []*servedFunction { return p.fns }

func (p *Pipeline) functionARN(name string) string {
	return fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", p.partition(), p.opts.Region, p.account, name)
}

func (p *Pipeline) arn(sf *servedFunction) string { return p.functionARN(sf.Name) }

// invokedARN is the ARN an invocation was made through: the function's, qualified as the caller asked.
func (p *Pipeline) invokedARN(sf *servedFunction, qualifier string) string {
	if qualifier == "" {
		return p.arn(sf)
	}
	return p.arn(sf) + ":" + qualifier
}

func (p *Pipeline) partition() string {
	switch {
	case strings.HasPrefix(p.opts.Region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(p.opts.Region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func (p *Pipeline) configuration(sf *servedFunction) functionConfiguration {
	env := make(map[string]string, len(sf.Env)+len(p.opts.Env))
	for k, v := range sf.Env {
		env[k] = v
	}
	for k, v := range p.opts.Env { // what the function sees, as the executors give it
		env[k] = v
	}
	cfg := functionConfiguration{
		FunctionName: sf.Name,
		FunctionArn:  p.arn(sf),
		Runtime:      sf.Runtime,
		// The template's Role resolves to a logical id at best; this placeholder is a well-formed role ARN.
		Role:             fmt.Sprintf("arn:%s:iam::%s:role/plldb-local", p.partition(), p.account),
		Handler:          sf.Handler,
		Description:      sf.Description,
		Timeout:          sf.Timeout,
		MemorySize:       sf.MemoryMB,
		LastModified:     p.started.Format("2006-01-02T15:04:05.000-0700"),
		Version:          "$LATEST",
		Environment:      functionEnvironment{Variables: env},
		Architectures:    []string{sf.Architecture},
		PackageType:      "Zip",
		State:            "Active",
		LastUpdateStatus: "Successful",
	}
	cfg.TracingConfig.Mode = "PassThrough"
	cfg.EphemeralStorage.Size = 512
	cfg.LoggingConfig.LogFormat = "Text"
	cfg.LoggingConfig.LogGroup = "/aws/lambda/" + sf.Name
	for _, l := range sf.Layers {
		cfg.Layers = append(cfg.Layers, functionLayer{Arn: fmt.Sprintf("arn:%s:lambda:%s:%s:layer:%s:1", p.partition(), p.opts.Region, p.account, l.LogicalID)})
	}
	for _, ref := range sf.UnresolvedLayers {
		if strings.HasPrefix(ref, "arn:") {
			cfg.Layers = append(cfg.Layers, functionLayer{Arn: ref})
		}
	}
	return cfg
}

// enqueue accepts an Event invocation of sf: it runs once sf has a free slot.
func (p *Pipeline) enqueue(sf *servedFunction, req InvokeRequest) (string, error) {
	return p.events.enqueue(sf, req)
}

// invoke runs a synchronous invocation of sf, or throttles it when sf has no free slot.
func (p *Pipeline) invoke(ctx context.Context, sf *servedFunction, req InvokeRequest) (InvokeResponse, error) {
	if err := p.takeSlot(sf); err != nil {
		return InvokeResponse{}, err
	}
	defer p.freeSlot(sf)
	id := req.RequestID
	if id == "" {
		id = runtimeapi.NewRequestID()
	}
	return p.run(ctx, sf, id, req)
}

// run runs one invocation of sf, with request id id, in a slot the caller holds.
func (p *Pipeline) run(ctx context.Context, sf *servedFunction, id string, req InvokeRequest) (InvokeResponse, error) {
	if sf.plain != nil {
		var knocked bool
		if req, knocked = p.route(sf, req); !knocked {
			return p.runPlain(ctx, sf, id, req)
		}
		if p.opts.Mirror {
			return p.runMirrored(ctx, sf, id, req)
		}
	}
	sb, err := p.acquire(ctx, sf)
	if err != nil {
		return InvokeResponse{}, err
	}
	invoked := p.invokedARN(sf, req.Qualifier)
	// Like attach in AWS mode, the sandbox's deadline is generous while debugging (a paused developer must not be
	// cut off by the emulated Lambda); otherwise it trails the function's timeout so the executor's own, exact
	// timeout error wins.
	budget := sf.timeout + 2*time.Second
	if p.opts.Debug {
		budget = 900 * time.Second
	}
	sb.out.Reset()
	start := time.Now()
	fmt.Fprintf(sb.out, "START RequestId: %s Version: $LATEST\n", id)
	p.reports.Store(id, reportFacts{}) // the developer side's answer fills it in (sandboxFacts)
	resp, err := sb.api.Invoke(ctx, runtimeInvocation(id, start.Add(budget), invoked, req))
	healthy := err == nil
	if err != nil && errors.Is(err, runtimeapi.ErrServerClosed) && ctx.Err() == nil && p.ctx.Err() == nil {
		// The sandbox's runtime (the layer proxy, which the exec wrapper runs in place of the runtime) stopped
		// before answering. Lambda answers that as a function error, Runtime.ExitError, not as a service error:
		// a 5xx ServiceException would make the AWS SDKs retry, running the handler a second time.
		resp, err = runtimeExitError(id), nil
		fmt.Fprintf(sb.out, "RequestId: %s Error: Runtime exited without providing a reason\nRuntime.ExitError\n", id)
	}
	var f reportFacts
	if v, ok := p.reports.LoadAndDelete(id); ok {
		f = v.(reportFacts)
	}
	writeEnd(sb.out, id, time.Since(start), sf.MemoryMB, req.Tail, f)
	logs := sb.out.Bytes()
	p.release(sf, sb, healthy)
	if err != nil {
		return InvokeResponse{}, fmt.Errorf("invoke %s: %w", sf.LogicalID, err)
	}
	out := InvokeResponse{RequestID: id, Payload: resp.Payload, Log: logs}
	if resp.Error {
		out.FunctionError = "Unhandled"
	} else if resp.Header != nil {
		out.ContentType = resp.Header.Get("Content-Type")
	}
	return out, nil
}

// runtimeExitError is Lambda's answer for an invocation whose runtime exited before answering it.
func runtimeExitError(id string) runtimeapi.Response {
	doc, _ := json.Marshal(runtimeapi.ErrorDocument{
		ErrorMessage: "RequestId: " + id + " Error: Runtime exited without providing a reason",
		ErrorType:    "Runtime.ExitError",
	})
	return runtimeapi.Response{Payload: doc, Error: true, ErrorType: "Runtime.ExitError"}
}

// Close answers in-flight invocations and runs the accepted Event invocations still queued, within ctx, then
// stops the Invoke API, the sandboxes, the developer side, the executors and the gateway, in that order. Event
// invocations that did not get to run are reported in an *UnfinishedEventsError among the errors returned.
func (p *Pipeline) Close(ctx context.Context) error {
	var errs []error
	if p.srv != nil {
		if err := p.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop Invoke API: %w", err))
		}
	}
	if p.events != nil {
		p.events.drain(ctx)
	}
	p.cancel()
	for _, sf := range p.fns {
		if sf == nil {
			continue
		}
		sf.mu.Lock()
		idle := sf.idle
		sf.idle = nil
		sf.mu.Unlock()
		for _, sb := range idle {
			sb.stop()
		}
	}
	if p.dev != nil {
		p.dev.Disconnect()
	}
	p.wg.Wait()
	p.closeMirrorLinks()
	if p.events != nil {
		if u := p.events.unfinished(); u != nil {
			p.log.Warn("event invocations accepted but not run before shutdown", "count", len(u.RequestIDs), "requestIds", u.RequestIDs)
			errs = append(errs, u)
		}
	}
	if p.dev != nil {
		if err := p.dev.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.plainDev != nil {
		if err := p.plainDev.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.knocks != nil {
		if err := p.knocks.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	if p.gw != nil {
		if err := p.gw.Close(); err != nil {
			errs = append(errs, fmt.Errorf("stop gateway: %w", err))
		}
	}
	return errors.Join(errs...)
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ownerName() string {
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	if user == "" {
		user = "developer"
	}
	return user + "@" + host
}

// hooks are the developer side's hooks: the caller's, with the pipeline's own observer in front.
func (p *Pipeline) hooks() devside.Hooks {
	h := p.opts.Hooks
	h.Observer = sandboxFacts{p: p, next: h.Observer}
	return h
}

// writeEnd writes an invocation's END and REPORT lines in Lambda's order: ... Memory Size, Max Memory Used, Init
// Duration (on a cold start only). Max Memory Used is read only when the caller gets the log (tail: the REPORT
// line's only reader here; the sandbox's peak then, which only grows, and left out when the sandbox is gone, as
// after a timeout): reading it costs more than the rest of a trivial invocation's REPORT.
func writeEnd(w io.Writer, id string, elapsed time.Duration, memorySizeMB int, tail bool, f reportFacts) {
	var facts string
	if tail && f.pid > 0 {
		if mb := executor.PeakMemoryMB(f.pid); mb > 0 {
			facts += fmt.Sprintf("\tMax Memory Used: %d MB", mb)
		}
	}
	if f.init > 0 {
		facts += fmt.Sprintf("\tInit Duration: %.2f ms", float64(f.init.Microseconds())/1000)
	}
	fmt.Fprintf(w, "END RequestId: %s\nREPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB%s\n",
		id, id, float64(elapsed.Microseconds())/1000, elapsed.Milliseconds()+1, memorySizeMB, facts)
}

// reportFacts is what the REPORT line of one invocation takes from the developer sandbox that ran it: in plldb
// local that sandbox, not the emulated Lambda sandbox in front of it, is the one that pays the cold start and
// holds the handler's memory, as Lambda's execution environment does.
type reportFacts struct {
	init time.Duration // Init Duration; 0 for a warm invocation
	pid  int           // the developer sandbox's process, whose peak is Max Memory Used; 0 when unknown
}

// sandboxFacts notes each invocation's reportFacts from the developer side's answer, for its REPORT line.
type sandboxFacts struct {
	p    *Pipeline
	next devside.Observer
}

func (o sandboxFacts) Started(inv *wire.Invoke) {
	if o.next != nil {
		o.next.Started(inv)
	}
}

func (o sandboxFacts) Finished(inv *wire.Invoke, out executor.Outcome, err error) {
	if out.InitDuration > 0 || out.PID > 0 {
		// Only while the REPORT line is still to be written: an answer that comes after it (the sandbox gave up
		// at its deadline) must not leave an entry behind.
		o.p.reports.CompareAndSwap(inv.RequestID, reportFacts{}, reportFacts{init: out.InitDuration, pid: out.PID})
	}
	if o.next != nil {
		o.next.Finished(inv, out, err)
	}
}
