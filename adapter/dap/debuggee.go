package dap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	godap "github.com/google/go-dap"
)

// debuggee is the adapter's DAP client connection to the debugpy inside one function's executor.
type debuggee struct {
	fn   string // the function's logical id
	port int
	log  *slog.Logger

	conn    net.Conn
	wmu     sync.Mutex // serializes writes and seq
	seq     int
	mu      sync.Mutex
	pending map[int]chan obj
	gone    bool

	onEvent     func(*debuggee, obj)
	initialized chan struct{}
	initOnce    sync.Once
	done        chan struct{} // closed when the connection has ended
}

// errDebuggeeGone is returned for requests to a debuggee whose connection ended (its executor restarted or
// stopped).
var errDebuggeeGone = errors.New("debuggee connection ended")

// dialDebuggee connects to debugpy on 127.0.0.1:port and starts reading its messages. onEvent runs on the reader
// goroutine for every event except "initialized", so it must not wait for a response from the same debuggee.
func dialDebuggee(ctx context.Context, fn string, port int, log *slog.Logger, onEvent func(*debuggee, obj)) (*debuggee, error) {
	var dl net.Dialer
	conn, err := dl.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("connect to debugpy of %s on port %d: %w", fn, port, err)
	}
	d := &debuggee{
		fn: fn, port: port, log: log.With("function", fn, "debugPort", port), conn: conn,
		pending: map[int]chan obj{}, onEvent: onEvent, initialized: make(chan struct{}), done: make(chan struct{}),
	}
	go d.read()
	return d, nil
}

func (d *debuggee) read() {
	defer close(d.done)
	defer func() {
		d.mu.Lock()
		d.gone = true
		for seq, ch := range d.pending {
			close(ch)
			delete(d.pending, seq)
		}
		d.mu.Unlock()
	}()
	br := bufio.NewReader(d.conn)
	for {
		raw, err := godap.ReadBaseMessage(br)
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
		switch m.str("type") {
		case "response":
			rs, _ := m.num("request_seq")
			d.mu.Lock()
			ch, ok := d.pending[rs]
			delete(d.pending, rs)
			d.mu.Unlock()
			if ok {
				ch <- m
			}
		case "event":
			if m.str("event") == "initialized" {
				d.initOnce.Do(func() { close(d.initialized) })
				continue
			}
			d.onEvent(d, m)
		case "request":
			// debugpy's reverse requests (runInTerminal, startDebugging) make no sense for an attached executor.
			d.log.Debug("ignoring reverse request", "command", m.str("command"))
		}
	}
}

// start sends a request and returns the channel its response arrives on (closed if the connection ends first).
func (d *debuggee) start(command string, args json.RawMessage) (chan obj, error) {
	ch := make(chan obj, 1)
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.mu.Lock()
	if d.gone {
		d.mu.Unlock()
		return nil, errDebuggeeGone
	}
	d.seq++
	seq := d.seq
	d.pending[seq] = ch
	d.mu.Unlock()
	msg := obj{}
	msg.set("seq", seq)
	msg.set("type", "request")
	msg.set("command", command)
	if len(args) > 0 {
		msg["arguments"] = args
	}
	b := msg.bytes()
	if d.log.Enabled(context.Background(), slog.LevelDebug) {
		d.log.Debug("to debugpy", "msg", clip(b))
	}
	if err := godap.WriteBaseMessage(d.conn, b); err != nil {
		d.mu.Lock()
		delete(d.pending, seq)
		d.mu.Unlock()
		return nil, fmt.Errorf("send %s to %s: %w", command, d.fn, err)
	}
	return ch, nil
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
