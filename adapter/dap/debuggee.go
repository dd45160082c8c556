package dap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// debuggee is the adapter's DAP client connection to the debugpy inside one function's executor.
type debuggee struct {
	fn      string // the function's logical id
	sandbox int    // which of the function's sandboxes (executor.SandboxInfo.ID); 0 when not known
	port    int
	log     *slog.Logger

	conn    net.Conn
	wmu     sync.Mutex // serializes writes and seq
	seq     int
	out     outFrame // under wmu: the next request
	mu      sync.Mutex
	pending map[int]func(resp obj, ok bool) // by request seq; ok is false when the connection ended first
	gone    bool

	onEvent func(*debuggee, obj)
	// resolving and held belong to the session's event handling and are touched only on the reader goroutine
	// (events and response callbacks both run there): a stop waiting for its thread's name, and the events
	// that wait behind it.
	resolving bool
	held      []obj

	initialized chan struct{}
	initOnce    sync.Once
	done        chan struct{} // closed when the connection has ended
}

// errDebuggeeGone is returned for requests to a debuggee whose connection ended (its executor restarted or
// stopped).
var errDebuggeeGone = errors.New("debuggee connection ended")

// dialDebuggee connects to debugpy on 127.0.0.1:port, starts reading its messages and, when token is not empty,
// authorizes with it (executor.Executor.DebugToken) before anything else. onEvent runs on the reader goroutine
// for every event except "initialized", so it must not wait for a response from the same debuggee.
func dialDebuggee(ctx context.Context, fn string, port int, token string, log *slog.Logger, onEvent func(*debuggee, obj)) (*debuggee, error) {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("connect to debugpy of %s on port %d: %w", fn, port, err)
	}
	conn = quickAck(conn)
	d := &debuggee{
		fn: fn, port: port, log: log.With("function", fn, "debugPort", port), conn: conn,
		pending: map[int]func(obj, bool){}, onEvent: onEvent, initialized: make(chan struct{}), done: make(chan struct{}),
	}
	go d.read()
	if token != "" {
		if err := d.authorize(ctx, token); err != nil {
			d.close()
			return nil, err
		}
	}
	return d, nil
}

// authorize sends pydevd's pydevdAuthorize request with the executor's access token: the executor's debugpy
// answers every other request of a connection that has not done so with "Client not authenticated.". The
// request is written without the debug log of startFunc: the token must never reach a log.
func (d *debuggee) authorize(ctx context.Context, token string) error {
	ch := make(chan obj, 1)
	d.wmu.Lock()
	d.mu.Lock()
	d.seq++
	seq := d.seq
	d.pending[seq] = func(m obj, ok bool) {
		if ok {
			ch <- m
		}
		close(ch)
	}
	d.mu.Unlock()
	msg := obj{}
	msg.set("seq", seq)
	msg.set("type", "request")
	msg.set("command", "pydevdAuthorize")
	msg.set("arguments", map[string]any{"debugServerAccessToken": token})
	err := writeFrame(d.conn, msg.bytes())
	d.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("authorize with debugpy of %s: %w", d.fn, err)
	}
	resp, err := d.wait(ctx, "pydevdAuthorize", ch)
	if err != nil {
		return fmt.Errorf("authorize with debugpy of %s: %w", d.fn, err)
	}
	if !resp.boolean("success") {
		return fmt.Errorf("authorize with debugpy of %s: refused: %s", d.fn, resp.str("message"))
	}
	return nil
}

func (d *debuggee) read() {
	defer close(d.done)
	defer func() {
		d.mu.Lock()
		d.gone = true
		pending := d.pending
		d.pending = map[int]func(obj, bool){}
		d.mu.Unlock()
		for _, fn := range pending {
			fn(nil, false)
		}
	}()
	br := bufio.NewReader(d.conn)
	for {
		raw, err := readFrame(br)
		if err != nil {
			d.log.Debug("debuggee connection ended", "err", err)
			return
		}
		if d.log.Enabled(context.Background(), slog.LevelDebug) {
			d.log.Debug("from debugpy", "msg", clip(raw))
		}
		m, err := parseObj(raw)
		if err != nil {
			d.log.Warn("debuggee sent a message that is not a JSON object", "err", err)
			continue
		}
		d.dispatch(m)
	}
}

// dispatch handles one message from debugpy. A panic in the session's handling of it is logged and the message
// dropped, so that one bad message does not end the adapter (and every paused invocation with it).
func (d *debuggee) dispatch(m obj) {
	defer func() {
		if v := recover(); v != nil {
			d.log.Error("recovered from a panic while handling a message from debugpy", "panic", v, "msg", clip(m.bytes()), "stack", string(debug.Stack()))
		}
	}()
	switch m.str("type") {
	case "response":
		rs, _ := m.num("request_seq")
		d.mu.Lock()
		fn, ok := d.pending[rs]
		delete(d.pending, rs)
		d.mu.Unlock()
		if ok {
			fn(m, true)
		}
	case "event":
		if m.str("event") == "initialized" {
			d.initOnce.Do(func() { close(d.initialized) })
			return
		}
		d.onEvent(d, m)
	case "request":
		// debugpy's reverse requests (runInTerminal, startDebugging) make no sense for an attached executor.
		d.log.Debug("ignoring reverse request", "command", m.str("command"))
	}
}

// start sends a request and returns the channel its response arrives on (closed if the connection ends first).
func (d *debuggee) start(command string, args json.RawMessage) (chan obj, error) {
	ch := make(chan obj, 1)
	err := d.startFunc(command, args, func(m obj, ok bool) {
		if ok {
			ch <- m
		}
		close(ch)
	})
	return ch, err
}

// startFunc sends a request; onResponse runs on the reader goroutine when the response arrives (or with ok
// false if the connection ends first), so it must not wait for another response from this debuggee. Answering
// from the reader saves the hop through a waiting goroutine on every proxied request.
func (d *debuggee) startFunc(command string, args json.RawMessage, onResponse func(resp obj, ok bool)) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.mu.Lock()
	if d.gone {
		d.mu.Unlock()
		return errDebuggeeGone
	}
	d.seq++
	seq := d.seq
	d.pending[seq] = onResponse
	d.mu.Unlock()
	b := d.requestFrame(seq, command, args)
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		d.log.Debug("to debugpy", "msg", clip(b[bytes.IndexByte(b, '{'):]))
	}
	if _, err := d.conn.Write(b); err != nil {
		d.mu.Lock()
		delete(d.pending, seq)
		d.mu.Unlock()
		return fmt.Errorf("send %s to %s: %w", command, d.fn, err)
	}
	return nil
}

// requestFrame frames a request in d.out (under wmu), written straight into the buffer: the same JSON as
// an obj with these members would encode to.
func (d *debuggee) requestFrame(seq int, command string, args json.RawMessage) []byte {
	d.out.start()
	b := append(d.out.b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"type":"request","command":`...)
	if plainString([]byte(command)) {
		b = append(b, '"')
		b = append(b, command...)
		b = append(b, '"')
	} else {
		b = append(b, mustJSON(command)...)
	}
	if len(args) > 0 {
		b = append(b, `,"arguments":`...)
		b = append(b, args...)
	}
	d.out.b = append(b, '}')
	return d.out.finish()
}

// request sends a request and waits for its response (which may be an error response: check "success").
func (d *debuggee) request(ctx context.Context, command string, args json.RawMessage) (obj, error) {
	ch, err := d.start(command, args)
	if err != nil {
		return nil, err
	}
	return d.wait(ctx, command, ch)
}

func (d *debuggee) wait(ctx context.Context, command string, ch chan obj) (obj, error) {
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s of %s: %w", command, d.fn, errDebuggeeGone)
		}
		return m, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s of %s: %w", command, d.fn, ctx.Err())
	}
}

// close ends the connection and waits for the reader.
func (d *debuggee) close() {
	_ = d.conn.Close()
	<-d.done
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values
	}
	return b
}

// attachTimeout bounds the attach handshake with one debugpy.
const attachTimeout = 30 * time.Second
