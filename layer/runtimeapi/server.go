package runtimeapi

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// ServerOptions configures a Server. The zero value is usable.
type ServerOptions struct {
	Addr   string       // listen address; default "127.0.0.1:0"
	Logger *slog.Logger // default: discard
	// MaxResponse bounds a posted response or error body; default MaxResponse (Lambda's 6,291,556 bytes). A
	// larger response is refused with 413 and the invocation is answered with Function.ResponseSizeTooLarge
	// and Lambda's message, as Lambda does.
	MaxResponse int64
	// DefaultTimeout sets the deadline of an invocation that has neither Deadline nor a deadline header;
	// default 3 s (Lambda's default function timeout).
	DefaultTimeout time.Duration
}

// ErrServerClosed is returned by Invoke once the Server is closed.
var ErrServerClosed = errors.New("runtime api server closed")

// Server is an in-process Lambda Runtime API. Invoke queues an invocation for the runtime's next
// GET /runtime/invocation/next and waits for its answer.
type Server struct {
	opts  ServerOptions
	log   *slog.Logger
	queue chan *call

	mu       sync.Mutex
	ln       net.Listener
	hs       *http.Server
	current  *call // handed to the runtime, not answered yet
	polling  bool  // a /next request is waiting
	answered map[string]struct{}
	order    []string // answered ids, oldest first, to bound the map

	ready     chan struct{}
	readyOnce sync.Once
	initErr   chan Response
	initDone  bool
	closed    chan struct{}
	closeOnce sync.Once
	serveDone chan struct{}
}

type call struct {
	id   string
	hdr  http.Header // what /next writes
	body []byte
	done chan Response // buffered 1: exactly one answer
}

const answeredMemory = 1024

// NewServer returns a Server; Start makes it listen.
func NewServer(opts ServerOptions) *Server {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.MaxResponse <= 0 {
		opts.MaxResponse = MaxResponse
	}
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = 3 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		opts:      opts,
		log:       log,
		queue:     make(chan *call),
		answered:  make(map[string]struct{}),
		ready:     make(chan struct{}),
		initErr:   make(chan Response, 1),
		closed:    make(chan struct{}),
		serveDone: make(chan struct{}),
	}
}

// Start listens and serves in the background until ctx ends or Close is called.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("runtime api listen on %s: %w", s.opts.Addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+APIVersion+"/runtime/invocation/next", s.handleNext)
	mux.HandleFunc("POST /"+APIVersion+"/runtime/invocation/{id}/response", s.handleAnswer(false))
	mux.HandleFunc("POST /"+APIVersion+"/runtime/invocation/{id}/error", s.handleAnswer(true))
	mux.HandleFunc("POST /"+APIVersion+"/runtime/init/error", s.handleInitError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	s.mu.Lock()
	s.ln, s.hs = ln, hs
	s.mu.Unlock()
	go func() {
		defer close(s.serveDone)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("runtime api serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.closed:
		}
	}()
	return nil
}

// Addr is the host:port the Server listens on: the value of AWS_LAMBDA_RUNTIME_API for its runtime.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops the Server. Pending Invoke calls return ErrServerClosed.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		s.mu.Lock()
		hs := s.hs
		s.mu.Unlock()
		if hs == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err = hs.Shutdown(ctx); err != nil {
			err = errors.Join(err, hs.Close())
		}
		<-s.serveDone
	})
	if err != nil {
		return fmt.Errorf("close runtime api: %w", err)
	}
	return nil
}

// Ready is closed on the runtime's first GET /next: its initialisation is done.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// InitError delivers what the runtime posted to /runtime/init/error (at most once).
func (s *Server) InitError() <-chan Response { return s.initErr }

// Invoke queues inv for the runtime and waits for its answer. Invocations are served one at a time, in the
// order Invoke was called. A RequestID is generated when inv has none (neither field nor header); headers in
// inv.Header win over the fields they duplicate. If ctx ends before the runtime took the invocation it is
// withdrawn; after that the runtime's late answer is accepted and dropped.
func (s *Server) Invoke(ctx context.Context, inv Invocation) (Response, error) {
	c, err := s.newCall(inv)
	if err != nil {
		return Response{}, err
	}
	select {
	case s.queue <- c:
	case <-ctx.Done():
		return Response{}, fmt.Errorf("invoke %s: not taken by the runtime: %w", c.id, ctx.Err())
	case <-s.closed:
		return Response{}, fmt.Errorf("invoke %s: %w", c.id, ErrServerClosed)
	}
	select {
	case r := <-c.done:
		return r, nil
	case <-ctx.Done():
		// An answer that arrived together with the cancellation (a runtime answering, then exiting) wins.
		select {
		case r := <-c.done:
			return r, nil
		default:
		}
		return Response{}, fmt.Errorf("invoke %s: no answer from the runtime: %w", c.id, ctx.Err())
	case <-s.closed:
		return Response{}, fmt.Errorf("invoke %s: %w", c.id, ErrServerClosed)
	}
}

func (s *Server) newCall(inv Invocation) (*call, error) {
	hdr := make(http.Header, len(inv.Header)+6)
	for k, v := range inv.Header {
		hdr[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	id := hdr.Get(HeaderRequestID)
	switch {
	case id == "" && inv.RequestID == "":
		id = NewRequestID()
	case id == "":
		id = inv.RequestID
	case inv.RequestID != "" && inv.RequestID != id:
		return nil, fmt.Errorf("invoke: RequestID %q disagrees with the %s header %q", inv.RequestID, HeaderRequestID, id)
	}
	setIfAbsent := func(k, v string) {
		if v != "" && hdr.Get(k) == "" {
			hdr.Set(k, v)
		}
	}
	setIfAbsent(HeaderRequestID, id)
	deadline := inv.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(s.opts.DefaultTimeout)
	}
	setIfAbsent(HeaderDeadline, strconv.FormatInt(deadline.UnixMilli(), 10))
	setIfAbsent(HeaderFunctionARN, inv.FunctionARN)
	setIfAbsent(HeaderTraceID, inv.TraceID)
	setIfAbsent(HeaderClientContext, inv.ClientContext)
	setIfAbsent(HeaderCognitoIdentity, inv.CognitoIdentity)
	setIfAbsent(HeaderTenantID, inv.TenantID)
	return &call{id: id, hdr: hdr, body: inv.Event, done: make(chan Response, 1)}, nil
}

func (s *Server) handleNext(w http.ResponseWriter, r *http.Request) {
	s.readyOnce.Do(func() {
		s.mu.Lock()
		s.initDone = true
		s.mu.Unlock()
		close(s.ready)
	})
	s.mu.Lock()
	switch {
	case s.current != nil:
		id := s.current.id
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "InvalidStateTransition",
			fmt.Sprintf("invocation %s is not answered yet: post its response or error before asking for the next one", id))
		return
	case s.polling:
		s.mu.Unlock()
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "another GET /runtime/invocation/next is already waiting")
		return
	}
	s.polling = true
	s.mu.Unlock()

	var c *call
	select {
	case c = <-s.queue:
	case <-r.Context().Done():
	case <-s.closed:
	}
	s.mu.Lock()
	s.polling = false
	if c != nil {
		s.current = c
	}
	s.mu.Unlock()
	if c == nil {
		if r.Context().Err() == nil {
			writeError(w, http.StatusInternalServerError, "ServiceShutdown", "the runtime api is shutting down")
		}
		return
	}
	h := w.Header()
	for k, v := range c.hdr {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(c.body)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(c.body); err != nil {
		s.log.Warn("runtime api: write invocation", "request_id", c.id, "err", err)
	}
}

func (s *Server) handleAnswer(isError bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if status, typ, msg := s.checkCurrent(id); status != 0 {
			writeError(w, status, typ, msg)
			return
		}
		body, size, err := readLimited(r.Body, s.opts.MaxResponse)
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("read body: %v", err))
			return
		}
		tooLarge := size > s.opts.MaxResponse
		resp := Response{Payload: body, Error: isError, Header: r.Header.Clone()}
		if isError {
			resp.ErrorType = r.Header.Get(HeaderErrorType)
		}
		if tooLarge {
			resp = oversizeResponse(size, s.opts.MaxResponse)
		}
		c := s.finish(id)
		if c == nil {
			// Lost a race with another answer to the same id.
			writeError(w, http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("invocation %s is already answered", id))
			return
		}
		c.done <- resp
		if tooLarge {
			writeTooLarge(w, s.opts.MaxResponse)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"OK"}`)
	}
}

// checkCurrent says whether id may be answered now; a non-zero status is the refusal.
func (s *Server) checkCurrent(id string) (int, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil && s.current.id == id {
		return 0, "", ""
	}
	if _, ok := s.answered[id]; ok {
		return http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("invocation %s is already answered", id)
	}
	return http.StatusNotFound, "InvalidRequestID", fmt.Sprintf("unknown invocation %q", id)
}

func (s *Server) finish(id string) *call {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.current
	if c == nil || c.id != id {
		return nil
	}
	s.current = nil
	s.answered[id] = struct{}{}
	s.order = append(s.order, id)
	if len(s.order) > answeredMemory {
		delete(s.answered, s.order[0])
		s.order = s.order[1:]
	}
	return c
}

func (s *Server) handleInitError(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	late := s.initDone
	s.initDone = true
	s.mu.Unlock()
	if late {
		writeError(w, http.StatusForbidden, "InvalidStateTransition", "init error posted after initialisation finished")
		return
	}
	body, size, err := readLimited(r.Body, s.opts.MaxResponse)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", fmt.Sprintf("read body: %v", err))
		return
	}
	if size > s.opts.MaxResponse {
		writeTooLarge(w, s.opts.MaxResponse)
		return
	}
	s.initErr <- Response{Payload: body, Error: true, ErrorType: r.Header.Get(HeaderErrorType), Header: r.Header.Clone()}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

// readLimited reads up to limit bytes of r and counts the rest without keeping it, as Lambda does to report
// an oversize response's size: body is nil when size > limit.
func readLimited(r io.Reader, limit int64) (body []byte, size int64, err error) {
	body, err = io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, 0, err
	}
	size = int64(len(body))
	if size <= limit {
		return body, size, nil
	}
	rest, err := io.Copy(io.Discard, r)
	if err != nil {
		return nil, 0, err
	}
	return nil, size + rest, nil
}

// writeTooLarge is the Runtime API's refusal of an oversize /response (rapi/rendering.RenderRequestEntityTooLarge).
func writeTooLarge(w http.ResponseWriter, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
		fmt.Sprintf("Exceeded maximum allowed payload size (%d bytes).", limit))
}

// OversizeDocument is the error document Lambda answers the caller with when the runtime posted a response of
// size bytes over limit: Function.ResponseSizeTooLarge, byte for byte as the Runtime Interface Emulator
// renders it (interop.ErrorResponseTooLarge, whose JSON has errorType first).
func OversizeDocument(size, limit int64) []byte {
	msg, _ := json.Marshal(fmt.Sprintf("Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes).", size, limit))
	return []byte(`{"errorType":"` + ErrorTypeResponseSizeTooLarge + `","errorMessage":` + string(msg) + `}`)
}

// ErrorTypeResponseSizeTooLarge is Lambda's error type for an oversize response.
const ErrorTypeResponseSizeTooLarge = "Function.ResponseSizeTooLarge"

func oversizeResponse(size, limit int64) Response {
	return Response{
		Payload: OversizeDocument(size, limit), Error: true, ErrorType: ErrorTypeResponseSizeTooLarge,
		Header: http.Header{"Content-Type": {"application/json"}},
	}
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	doc, _ := json.Marshal(ErrorDocument{ErrorMessage: msg, ErrorType: typ})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(doc)
}

// NewRequestID returns a random UUID (version 4), the form Lambda's request ids take.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
