// Package executor runs one AWS Lambda function's Python handler on the developer's machine.
//
// Each function gets a pool of sandboxes (pool.go), each one Python "executor" process (executor.py, embedded in
// the binary) that imports the handler from the local source tree, with sys.path, environment and context object
// as Lambda builds them, and runs one invocation at a time, under debugpy when debugging. Go controls it with JSON-RPC 2.0 over
// two dedicated pipes (fds 3 and 4 in the child), never stdin/stdout, so whatever the handler prints cannot
// corrupt the protocol. Messages are newline-delimited JSON (jsonrpc2.NewPlainObjectStream) rather than
// Content-Length framing: json.dumps writes one object per line, so the stdlib-only Python side needs no framing
// code and reads with a plain readline. Events, and payloads over 32 KB, travel as length-prefixed frames named
// by the JSON-RPC message (big ones on a second pipe pair, fds 5 and 6): jsonrpc2 re-encodes and re-scans every
// message several times (see data.go), and an event executor.py cannot decode must not break the request
// carrying it (see invokeParams).
//
// Protocol: Go calls initialize {handler, codeDir, layerDirs, debug, accessToken} → {pid, version, debugPort}, then invoke
// {requestId, ref, eventRef, deadlineMs, invokedFunctionArn, traceId, clientContext, cognitoIdentity, credentials} →
// {payload | payloadRef + contentType | error + errorDoc, scanNs}, and shutdown. Python sends log notifications {requestId, stream, text}.
//
// The Executor hides the processes' lives: it replaces a sandbox after a crash or an enforced timeout (as Lambda
// resets a sandbox) and answers the invocation it lost with a Lambda-format error, leaving the others alone.
//
// debugpy has no authentication of its own, and its loopback port is open to every local user, who could attach
// and run code as the developer with the developer's credentials. So unless Spec.OpenDebugpy, the executor turns
// on pydevd's access token (a fresh random one per Executor, shared by its sandboxes, sent over the private pipe in initialize): a client
// must send pydevdAuthorize with the token as its first message. A connection that does not is closed as soon as
// it is accepted, before pydevd sees it (pydevd would otherwise drop plldb's connection for it, clearing its
// breakpoints), and pydevd's authentication is bound to the connection that presented the token (pydevd keeps
// one process-wide flag).
package executor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sourcegraph/jsonrpc2"
)

// Spec describes the function an executor runs and how.
type Spec struct {
	LogicalID, FunctionName, Handler, Runtime, Region, Version string
	// CodeDir is absolute; it becomes LAMBDA_TASK_ROOT, the working directory and sys.path[0].
	CodeDir string
	// LayerDirs are each layer's python/ folder, in order; they follow the code folder on sys.path (with their
	// lib/pythonX.Y/site-packages, when present, as Lambda does for /opt/python).
	LayerDirs []string
	// Env holds the function's variables (from the template, or forwarded from the sandbox).
	Env                  map[string]string
	MemoryMB, TimeoutSec int
	// Python is the interpreter; "" resolves with FindPython("", CodeDir).
	Python string
	// Debug starts debugpy listening on 127.0.0.1 (random port) before any handler code is imported. Only a
	// client that authorizes with DebugToken first (pydevd's pydevdAuthorize request) may then use it, unless
	// OpenDebugpy is set.
	Debug bool
	// OpenDebugpy lets any local client attach to debugpy without the token: for plain IDE attach, where the
	// port is printed for an editor that cannot authorize (plldb attach and plldb local --debug without DAP).
	// Any local user can then run code as the developer; plldb dap never sets it.
	OpenDebugpy bool
	// EnforceTimeout answers an invocation still running at its deadline with Lambda's timeout error and restarts
	// the process. Leave it off while debugging: a developer paused at a breakpoint is not a timeout.
	EnforceTimeout bool
	// MaxConcurrency is how many sandboxes (concurrent invocations) the function may have; 0 → 10. Invoke
	// waits for a free sandbox past it.
	MaxConcurrency int
	// IdleTimeout is how long a sandbox may stay idle before it is stopped (one always stays); 0 → 10 minutes.
	IdleTimeout time.Duration
	// OnStart, if set, is called for every new sandbox once its process is ready and before it takes an
	// invocation, so a debugger can attach and set breakpoints first. It runs on the goroutine that starts the
	// sandbox (an invocation may be waiting for it) and must return when ctx ends (when the Executor closes).
	OnStart func(ctx context.Context, sb SandboxInfo)
	// OnExit, if set, is called when a sandbox's process has ended.
	OnExit func(sb SandboxInfo)
	Logger *slog.Logger
	// ValidJSON checks each event before it goes to Python; it must accept exactly what json.Valid accepts,
	// which is what nil means. The developer side passes wire.Valid, several times faster on the megabytes of
	// base64 a large event is.
	ValidJSON func([]byte) bool

	// adapterProcess runs debugpy's DAP adapter as a separate process instead of inside the executor (slower to
	// start; kept for the cold-start benchmark that chose the default). That adapter takes any client: no token.
	adapterProcess bool
}

// Invocation is one call of the function.
type Invocation struct {
	RequestID string // "" → a fresh UUID
	Event     []byte // JSON; empty means {}
	Deadline  time.Time
	// InvokedARN defaults to a local placeholder ARN; ClientContext is JSON (or base64 JSON, as the Invoke API
	// takes it) and CognitoIdentity is JSON with cognitoIdentityId and cognitoIdentityPoolId.
	InvokedARN, TraceID, ClientContext, CognitoIdentity string
	// TenantID is the caller's tenant (X-Amz-Tenant-Id) for a function in tenant isolation mode: the context's
	// tenant_id, and tenantId in JSON log records.
	TenantID string
	// Credentials, if set, are the AWS credentials the handler sees for this invocation (its os.environ while it
	// runs, restored after); nil: none, unless the function's own variables (Spec.Env) set them.
	Credentials *Credentials
}

// Outcome is what the function answered: Payload (JSON) on success, Err when the function failed.
type Outcome struct {
	Payload []byte
	// ContentType is the payload's as awslambdaric posts it: "application/json", or "application/unknown" for a
	// handler that returned bytes (Payload is then those bytes, not JSON).
	ContentType string
	Err         *LambdaError
	Duration    time.Duration
	// InitDuration is how long the sandbox took to start, set on the first invocation it runs (Lambda's "Init
	// Duration" of a cold start); 0 for a warm invocation.
	InitDuration time.Duration
	// PID is the process id of the sandbox that ran the invocation: PeakMemoryMB reads its peak, Lambda's "Max
	// Memory Used" (likewise the execution environment's peak, not the invocation's), when it is wanted.
	PID int
}

// LambdaError is an error in the shape Lambda returns it to the caller.
type LambdaError struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	RequestID    string   `json:"requestId,omitempty"`
	StackTrace   []string `json:"stackTrace,omitempty"`
	// Document is the error as awslambdaric posts it, byte for byte (all four keys, its key order and
	// separators); nil for errors made on the Go side (timeouts, crashes).
	Document []byte `json:"-"`
}

func (e *LambdaError) Error() string { return e.ErrorType + ": " + e.ErrorMessage }

// LogLine is output of the function. RequestID is "" for output outside any invocation (the process's own
// stdout/stderr). Text holds whole lines with their newline, except possibly a request's last piece.
//
// Text is what awslambdaric writes to stdout when Lambda gives it no telemetry pipe (as under the Runtime
// Interface Emulator). A record awslambdaric writes to the telemetry pipe when it has one (a logging record,
// context.log output, the [ERROR] report of a failed invocation) has Frame set to the frame type it would
// use; Record is then that frame's message, and Text[:Lead] is an unfinished line printed before the record,
// which stays on stdout. Frame is 0 for plain stdout/stderr output.
type LogLine struct {
	RequestID, Stream, Text string
	Time                    time.Time
	Frame                   uint32
	Record                  string
	Lead                    int
}

// ErrClosed is returned by Invoke and Restart once Close has been called.
var ErrClosed = errors.New("executor closed")

const (
	defaultTimeoutSec = 3
	defaultMemoryMB   = 128
	stopGrace         = 2 * time.Second
	codeNoDebugpy     = -32001
)

// Executor runs one function's sandboxes. Its methods are safe for concurrent use.
type Executor struct {
	spec   Spec
	python string
	script string
	env    []string
	args   []string
	onLog  func(LogLine)
	log    *slog.Logger

	life   context.Context // cancelled by Close; background restarts and connections live in it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	live     map[*sandbox]struct{} // sandboxes whose process runs, idle or busy
	idle     []*sandbox            // least recently used first
	starting int                   // sandboxes being started
	nextID   int
	freed    chan struct{} // closed (and replaced) when a sandbox is released or a slot opens
	closed   bool

	scanNs, scans atomic.Int64 // reload-scan cost reported by Python, for BenchmarkReloadScan
	refs          atomic.Uint64

	// debugToken is debugpy's access token, the same for every process this Executor starts. It reaches the
	// process over the private JSON-RPC pipe, never its command line (world-readable in /proc) or environment
	// (inherited by whatever the handler starts).
	debugToken string
}

// Start validates spec, starts the function's first sandbox and returns once it is ready (and debugpy
// listening, if Debug). onLog (may be nil: output is then logged) receives the function's output. It is called from several
// reader goroutines, so it must be safe for concurrent use, and it must not block. An invocation's output sent
// before its answer is delivered before Invoke returns its outcome.
func Start(ctx context.Context, spec Spec, onLog func(LogLine)) (*Executor, error) {
	if err := validate(&spec); err != nil {
		return nil, err
	}
	python, err := FindPython(spec.Python, spec.CodeDir)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", spec.LogicalID, err)
	}
	script, err := writeScript()
	if err != nil {
		return nil, err
	}
	logger := spec.Logger
	if logger == nil {
		logger = slog.Default()
	}
	e := &Executor{
		spec:   spec,
		python: python,
		script: script,
		onLog:  onLog,
		log:    logger.With("function", spec.LogicalID),
		live:   map[*sandbox]struct{}{},
		freed:  make(chan struct{}),
	}
	e.env = buildEnv(spec, script)
	if spec.Debug && !spec.OpenDebugpy && !spec.adapterProcess {
		e.debugToken = randomHex(32)
	}
	if spec.Debug {
		// debugpy warns that frozen stdlib modules may miss breakpoints; older interpreters ignore the option.
		e.args = append(e.args, "-X", "frozen_modules=off")
	}
	e.args = append(e.args, script)
	e.life, e.cancel = context.WithCancel(context.Background())
	if err := e.warm(ctx); err != nil {
		_ = e.Close()
		return nil, err
	}
	e.wg.Add(1)
	go e.reap()
	return e, nil
}

func validate(spec *Spec) error {
	name := spec.LogicalID
	if name == "" {
		name = spec.FunctionName
	}
	switch {
	case spec.Handler == "":
		return fmt.Errorf("function %s: no handler given", name)
	case !strings.Contains(spec.Handler, ".") || strings.HasPrefix(spec.Handler, ".") || strings.HasSuffix(spec.Handler, "."):
		return fmt.Errorf("function %s: handler %q is not of the form module.function", name, spec.Handler)
	case spec.CodeDir == "":
		return fmt.Errorf("function %s: no code folder given", name)
	case !filepath.IsAbs(spec.CodeDir):
		return fmt.Errorf("function %s: code folder %q is not an absolute path", name, spec.CodeDir)
	case spec.TimeoutSec < 0 || spec.TimeoutSec > 900:
		return fmt.Errorf("function %s: timeout %d s is outside Lambda's 1–900 s", name, spec.TimeoutSec)
	case spec.MemoryMB < 0 || spec.MemoryMB > 10240:
		return fmt.Errorf("function %s: memory %d MB is outside Lambda's 128–10240 MB", name, spec.MemoryMB)
	}
	if st, err := os.Stat(spec.CodeDir); err != nil {
		return fmt.Errorf("function %s: code folder: %w", name, err)
	} else if !st.IsDir() {
		return fmt.Errorf("function %s: code folder %s is not a folder", name, spec.CodeDir)
	}
	for _, d := range spec.LayerDirs {
		if st, err := os.Stat(d); err != nil {
			return fmt.Errorf("function %s: layer folder: %w", name, err)
		} else if !st.IsDir() {
			return fmt.Errorf("function %s: layer folder %s is not a folder", name, d)
		}
	}
	if spec.LogicalID == "" {
		spec.LogicalID = spec.FunctionName
	}
	if spec.FunctionName == "" {
		spec.FunctionName = spec.LogicalID
	}
	if spec.TimeoutSec == 0 {
		spec.TimeoutSec = defaultTimeoutSec
	}
	if spec.MemoryMB == 0 {
		spec.MemoryMB = defaultMemoryMB
	}
	if spec.MaxConcurrency <= 0 {
		spec.MaxConcurrency = defaultMaxConcurrency
	}
	if spec.IdleTimeout <= 0 {
		spec.IdleTimeout = defaultIdleTimeout
	}
	if spec.Version == "" {
		spec.Version = "$LATEST"
	}
	if spec.Region == "" {
		spec.Region = firstNonEmpty(spec.Env["AWS_REGION"], os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), "us-east-1")
	}
	return nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// buildEnv gives the process the developer's environment (PATH, …, but not AWS credentials) overlaid with what Lambda sets,
// the function's own variables, and last the variables that must point at the local tree.
func buildEnv(spec Spec, script string) []string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	// A developer's PYTHONPATH/PYTHONHOME would change the sys.path Lambda builds (or break the venv).
	delete(env, "PYTHONPATH")
	delete(env, "PYTHONHOME")
	delete(env, "AWS_LAMBDA_EXEC_WRAPPER")
	// Each sandbox adds its own TMPDIR and AWS_LAMBDA_LOG_STREAM_NAME (startSandbox).
	delete(env, "TMPDIR")
	// A handler gets its credentials per invocation (Invocation.Credentials), never the shell's by accident.
	for _, k := range credentialVars {
		delete(env, k)
	}
	env["AWS_LAMBDA_LOG_GROUP_NAME"] = "/aws/lambda/" + spec.FunctionName
	for k, v := range spec.Env {
		env[k] = v
	}
	set := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        spec.FunctionName,
		"AWS_LAMBDA_FUNCTION_VERSION":     spec.Version,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(spec.MemoryMB),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      spec.Region,
		"AWS_DEFAULT_REGION":              spec.Region,
		"_HANDLER":                        spec.Handler,
		"LAMBDA_TASK_ROOT":                spec.CodeDir,
		"LAMBDA_RUNTIME_DIR":              filepath.Dir(script),
		"TZ":                              ":UTC",
		"PYTHONUNBUFFERED":                "1",
	}
	if spec.Runtime != "" {
		set["AWS_EXECUTION_ENV"] = "AWS_Lambda_" + spec.Runtime
	}
	if spec.Debug {
		set["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
	}
	for k, v := range set {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// newRequestID returns a random UUID (version 4), the form Lambda's request ids take.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Invoke runs one invocation in a sandbox of its own and returns the function's outcome. Function failures
// (exceptions, import errors, timeouts, crashes) are Outcome.Err in Lambda's format; the error is for failures to
// invoke at all (bad input, ctx cancelled, executor closed or unable to start a sandbox).
func (e *Executor) Invoke(ctx context.Context, inv Invocation) (Outcome, error) {
	params, err := e.invokeParams(inv)
	if err != nil {
		return Outcome{}, err
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		sb, err := e.acquire(ctx)
		if err != nil {
			return Outcome{}, fmt.Errorf("invocation %s: %w", params.RequestID, err)
		}
		out, retry, err := e.run(ctx, sb, params, start)
		e.release(sb)
		// Each retry used up a sandbox that had died before the request reached it, which the pool then dropped:
		// as many tries as there can be sandboxes, and two more for replacements that die as they start.
		if retry && attempt < e.spec.MaxConcurrency+2 {
			continue
		}
		return out, err
	}
}

// run runs an invocation in sb. retry is true when the sandbox's process had died before the request went out:
// the handler never ran, so another sandbox may take it.
func (e *Executor) run(ctx context.Context, sb *sandbox, params *invokeParams, start time.Time) (out Outcome, retry bool, err error) {
	rid := params.RequestID
	p := sb.proc
	out.PID = p.pid
	if sb.served == 0 {
		out.InitDuration = sb.initDur
	}
	var w jsonrpc2.Waiter
	err = p.dataOut.send(params.EventRef, params.event)
	if err == nil {
		w, err = p.conn.DispatchCall(ctx, "invoke", params)
	}
	if err != nil {
		if exitedEarly(err) || errors.Is(err, os.ErrClosed) {
			// The process died before the request went out, so the handler never ran: another sandbox takes it.
			if err := p.waitExit(ctx); err != nil {
				return Outcome{}, false, fmt.Errorf("invocation %s: %w", rid, err)
			}
			return Outcome{}, true, fmt.Errorf("send invocation %s: %w", rid, err)
		}
		return Outcome{}, false, fmt.Errorf("send invocation %s: %w", rid, err)
	}
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if e.spec.EnforceTimeout {
		waitCtx, cancel = context.WithDeadline(ctx, time.UnixMilli(params.DeadlineMs))
	}
	var res invokeResult
	err = w.Wait(waitCtx, &res)
	cancel()
	out.Duration = time.Since(start)
	switch {
	case err == nil:
		e.scanNs.Add(res.ScanNs)
		e.scans.Add(1)
		if res.Error != nil {
			if res.ErrorDoc != "" {
				res.Error.Document = []byte(res.ErrorDoc)
			}
			out.Err = res.Error
			return out, false, nil
		}
		if res.ContentType == "" {
			res.ContentType = "application/json"
		}
		out.ContentType = res.ContentType
		if res.PayloadRef != 0 {
			if res.PayloadRef != params.Ref {
				return Outcome{}, false, fmt.Errorf("invocation %s: executor answered with body %d, want %d", rid, res.PayloadRef, params.Ref)
			}
			b, err := p.dataIn.take(params.Ref, ctx.Done())
			if err != nil {
				return Outcome{}, false, fmt.Errorf("invocation %s: %w", rid, err)
			}
			out.Payload, out.Duration = b, time.Since(start)
			return out, false, nil
		}
		if len(res.Payload) == 0 {
			return Outcome{}, false, fmt.Errorf("invocation %s: executor answered without payload or error", rid)
		}
		out.Payload = []byte(res.Payload)
		return out, false, nil
	case ctx.Err() != nil:
		p.dataIn.abandon(params.Ref)
		return Outcome{}, false, fmt.Errorf("invocation %s: %w", rid, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		e.log.Warn("invocation timed out; replacing its sandbox", "requestId", rid, "sandbox", sb.id, "timeoutSec", e.spec.TimeoutSec)
		// The handler cannot be stopped inside its process; Lambda resets the sandbox too. Its siblings go on.
		e.mu.Lock()
		sb.gone = true
		e.mu.Unlock()
		p.stop("request "+rid+" timed out", 0)
		secs := float64(e.spec.TimeoutSec)
		now := time.Now()
		// Lambda writes this line to the function's log as well.
		e.emit(LogLine{RequestID: rid, Stream: "stdout", Time: now,
			Text: fmt.Sprintf("%s %s Task timed out after %.2f seconds\n", now.UTC().Format("2006-01-02T15:04:05.000Z"), rid, secs)})
		out.Err = &LambdaError{
			ErrorMessage: fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", rid, secs),
			ErrorType:    "Sandbox.Timedout",
		}
		return out, false, nil
	case errors.Is(err, jsonrpc2.ErrClosed):
		if e.isClosed() {
			return Outcome{}, false, fmt.Errorf("invocation %s: %w", rid, ErrClosed)
		}
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			// The connection broke but the process lives on: without a channel it is useless.
			p.stop("lost the control connection", 0)
			<-p.done
		}
		msg := fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", rid, p.exitDescription())
		e.emit(LogLine{RequestID: rid, Stream: "stdout", Time: time.Now(), Text: msg + "\nRuntime.ExitError\n"})
		out.Err = &LambdaError{ErrorMessage: msg, ErrorType: "Runtime.ExitError"}
		out.Duration = time.Since(start)
		return out, false, nil
	default:
		return Outcome{}, false, fmt.Errorf("invocation %s: %w", rid, err)
	}
}

type invokeParams struct {
	RequestID string `json:"requestId"`
	Ref       uint64 `json:"ref"` // names this invocation's bodies on the data pipes
	// EventRef (= Ref) names the event's frame (see dataOut). Every event travels as raw bytes in a frame of its
	// own, never inside the request line: JSON that Go's check accepts may still be JSON Python's json cannot
	// decode (invalid UTF-8 in a string, nesting past Python's recursion limit, integers past
	// int_max_str_digits), and inside the line it would fail executor.py's read of the request itself, before
	// it knows which invocation it is (no answer, or its main loop dead). On its own, the event is decoded by
	// the invocation's thread, which answers Runtime.UnmarshalError for that invocation only, as Lambda's
	// runtime does.
	EventRef           uint64 `json:"eventRef"`
	event              []byte // the event's bytes, for its frame
	DeadlineMs         int64  `json:"deadlineMs"`
	InvokedFunctionArn string `json:"invokedFunctionArn"`
	TraceID            string `json:"traceId,omitempty"`
	TenantID           string `json:"tenantId,omitempty"`
	// The JSON texts as strings, decoded by executor.py per invocation for the same reason as the event (a
	// client context may nest deeper than Python's recursion limit within the Invoke API's 3,583 bytes).
	ClientContext   string `json:"clientContext,omitempty"`
	CognitoIdentity string `json:"cognitoIdentity,omitempty"`
	// Credentials are set in os.environ for the invocation (see Invocation.Credentials).
	Credentials *wireCredentials `json:"credentials,omitempty"`
}

type invokeResult struct {
	Payload     json.RawMessage `json:"payload"`
	PayloadRef  uint64          `json:"payloadRef"`
	ContentType string          `json:"contentType"` // "" for application/json
	Error       *LambdaError    `json:"error"`
	ErrorDoc    string          `json:"errorDoc"`
	ScanNs      int64           `json:"scanNs"`
}

func (e *Executor) invokeParams(inv Invocation) (*invokeParams, error) {
	p := &invokeParams{RequestID: inv.RequestID, Ref: e.refs.Add(1), event: inv.Event, InvokedFunctionArn: inv.InvokedARN, TraceID: inv.TraceID, TenantID: inv.TenantID}
	p.EventRef = p.Ref
	if c := inv.Credentials; c != nil {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, fmt.Errorf("invocation %s: credentials without an access key id or secret access key", firstNonEmpty(p.RequestID, "(new)"))
		}
		p.Credentials = &wireCredentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	}
	if p.RequestID == "" {
		p.RequestID = newRequestID()
	}
	valid := e.spec.ValidJSON
	if valid == nil {
		valid = json.Valid
	}
	// Invalid UTF-8 passes this syntax check on purpose: Lambda's Invoke API refuses it, but events reach the
	// executor by other ways too (the relay, in AWS mode), and executor.py answers Runtime.UnmarshalError for it.
	if len(p.event) == 0 {
		p.event = []byte("{}")
	} else if !valid(p.event) {
		return nil, fmt.Errorf("invocation %s: event is not valid JSON", p.RequestID)
	}
	deadline := inv.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(time.Duration(e.spec.TimeoutSec) * time.Second)
	}
	p.DeadlineMs = deadline.UnixMilli()
	if p.InvokedFunctionArn == "" {
		p.InvokedFunctionArn = "arn:aws:lambda:" + e.spec.Region + ":012345678912:function:" + e.spec.FunctionName
	}
	var err error
	if p.ClientContext, err = jsonObject(inv.ClientContext, true); err != nil {
		return nil, fmt.Errorf("invocation %s: client context: %w", p.RequestID, err)
	}
	if p.CognitoIdentity, err = jsonObject(inv.CognitoIdentity, false); err != nil {
		return nil, fmt.Errorf("invocation %s: cognito identity: %w", p.RequestID, err)
	}
	return p, nil
}

// jsonObject accepts "" (none), a JSON object, or (if b64) base64 of one, as the Invoke API carries client
// context. It refuses invalid UTF-8, which would otherwise reach Python as U+FFFD (encoding/json's repair of a
// string), not as what the caller sent.
func jsonObject(s string, b64 bool) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if strings.HasPrefix(s, "{") {
		if !json.Valid([]byte(s)) || !utf8.ValidString(s) {
			return "", errors.New("not valid JSON")
		}
		return s, nil
	}
	if b64 {
		if raw, err := base64.StdEncoding.DecodeString(s); err == nil && json.Valid(raw) && utf8.Valid(raw) && strings.HasPrefix(strings.TrimSpace(string(raw)), "{") {
			return string(raw), nil
		}
		return "", errors.New("neither a JSON object nor base64 of one")
	}
	return "", errors.New("not a JSON object")
}

func (e *Executor) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// DebugToken is the access token a debugpy client must present in pydevd's pydevdAuthorize request
// ({"debugServerAccessToken": token}) before any other request; "" when debugpy is open to any client (or not
// running). It is a secret: never log it.
func (e *Executor) DebugToken() string { return e.debugToken }

// PeakMemoryMB reads the peak resident set size (VmHWM) of process pid (a sandbox: Outcome.PID) from /proc, in MB
// rounded up; 0 when it cannot be read (the process is gone, or this is not Linux). It costs ~60 µs.
func PeakMemoryMB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseVmHWM(b)
}

// parseVmHWM finds "VmHWM:\t  1234 kB" in a /proc/<pid>/status text and returns it in MB, rounded up.
func parseVmHWM(status []byte) int {
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0
		}
		kb, err := strconv.Atoi(string(f[0]))
		if err != nil || kb < 0 {
			return 0
		}
		return (kb + 1023) / 1024
	}
	return 0
}
