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
	"sync"
	"time"

	godap "github.com/google/go-dap"
)

// Options configure the adapter's sessions.
type Options struct {
	Logger *slog.Logger
	// ShutdownTimeout bounds how long disconnect waits for the backend to close (answer in-flight invocations,
	// restore an AWS session's functions); 0 → 20 s.
	ShutdownTimeout time.Duration
	// LaunchDefaults are launch attributes applied when the IDE's launch request leaves them out (`plldb attach
	// --listen` presets "mode": "aws" and the stack this way).
	LaunchDefaults map[string]any
	// Host, when set, is the backend the command owns (`plldb local --debug --listen`, `plldb attach --listen`):
	// attach requests bind to it, and disconnecting detaches only the IDE. Without it attach is refused.
	Host *Host

	// configHold bounds how long an invocation waits for the IDE's configurationDone; 0 → configHoldMax.
	configHold time.Duration
	// requestHook, when set (tests only), runs before each request is handled.
	requestHook func(command string)
}

// session is one IDE debug session: one connection, one backend (the local pipeline or an AWS session), one
// debuggee per function.
//
// Goroutines: one reader handles the IDE's requests in order (so setBreakpoints for one source apply in the
// order sent), and recovers from a panic in any of them with an error response; each debuggee has a reader
// that translates its events, and relays the responses to proxied requests, as they arrive. A debuggee's
// events reach the IDE in the order debugpy sent them: a stop waits on that reader for debugpy to name its
// thread, and the events behind it wait in turn (events.go). Work that waits for debuggees off those readers
// (modules, re-attaching after an executor restart) runs on goroutines counted in wg, which run waits for.
// Invocations that arrive before the IDE's configurationDone wait on their own dispatcher goroutines
// (holdUntilConfigured) until it comes, the session ends, or configHold passes. Every write to the IDE goes
// through send or sendMsg, which serialize them. The session ends when the IDE disconnects or goes away (EOF),
// or ctx ends; the backend is then closed, which answers every in-flight invocation.
//
// A session that sent attach does not own its backend: it belongs to a Host (host.go), whose hooks run on the
// backend's goroutines and forward to the one session bound at the time. Ending such a session detaches from
// every debugpy (which clears the IDE's breakpoints and resumes paused threads) and unbinds it; the backend
// goes on serving.
type session struct {
	opts Options
	log  *slog.Logger
	rw   io.ReadWriteCloser

	ctx    context.Context // cancelled when the session ends
	cancel context.CancelFunc

	wmu sync.Mutex
	seq int
	out outFrame // under wmu: the next message to the IDE

	initArgs json.RawMessage // under mu: re-attaches read it from other goroutines
	progress bool
	// detachedReader: rw's Close does not interrupt a Read (stdin), so run does not wait for the reader.
	detachedReader bool

	mu        sync.Mutex
	cfg       *LaunchConfig
	pipeline  backend                // what launch started; nil before, and once shutdown has begun
	shared    backend                // the host's backend this session attached to (never closed by the session)
	debuggees map[string]*debuggee   // sandboxKey → that sandbox's debuggee
	attaching map[string]int         // sandboxKey → port being attached
	lastStop  *debuggee              // the debuggee that stopped last: where forward sends requests that name none
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

	// configDone is closed once invocations may run: the IDE sent configurationDone, the launch has no
	// debugger to configure, or the session is ending.
	configDone chan struct{}
	configOnce sync.Once

	threads  *threadTable
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
	if opts.configHold == 0 {
		opts.configHold = configHoldMax
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		opts: opts, log: opts.Logger, rw: rw, ctx: ctx, cancel: cancel,
		debuggees: map[string]*debuggee{}, attaching: map[string]int{},
		bps: map[string]obj{}, bpState: map[int]bool{}, invokes: map[string]invokeState{}, shutDone: make(chan struct{}),
		configDone: make(chan struct{}),
		threads:    newThreadTable(), frames: newHandles[ref](), vars: newHandles[ref](), sources: newHandles[ref](),
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
// that wait (launch, setBreakpoints, setFunctionBreakpoints, setExceptionBreakpoints) are bounded by the
// session's context and per-request timeouts.
func (s *session) serveRequests() error {
	br := bufio.NewReader(s.rw)
	for {
		raw, err := readFrame(br)
		if err != nil {
			var bpe *godap.BaseProtocolError
			if errors.As(err, &bpe) {
				s.log.Warn("IDE sent a malformed DAP frame; ending the session", "err", err)
			}
			return err
		}
		m, err := parseObj(raw)
		if err != nil {
			s.output("important", "plldb: ignoring a message that is not a JSON object\n")
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
