package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sourcegraph/jsonrpc2"
)

// process is one run of the Python executor.
type process struct {
	pid       int
	debugPort int
	version   string
	conn      *jsonrpc2.Conn
	done      chan struct{} // closed after the process has exited and state is set
	state     *os.ProcessState
	tail      *tailBuffer // end of its stderr, for start-up errors
	dataIn    *dataIn
	dataOut   *dataOut

	mu     sync.Mutex
	reason string // why plldb stopped it, if it did
}

func (p *process) setReason(r string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reason == "" {
		p.reason = r
	}
}

// stop signals the process group (the handler's own subprocesses go too): SIGTERM first when grace > 0, SIGKILL
// after grace or at once.
func (p *process) stop(reason string, grace time.Duration) {
	select {
	case <-p.done: // it ended on its own; its exit status tells why
	default:
		p.setReason(reason)
	}
	if grace > 0 {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
		select {
		case <-p.done:
			_ = syscall.Kill(-p.pid, syscall.SIGKILL) // leftovers of the group
			return
		case <-time.After(grace):
		}
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
}

func (p *process) waitExit(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for executor exit: %w", ctx.Err())
	}
}

// exitDescription says how the process ended, as Lambda words it ("exit status 1", "signal: killed"), plus
// why plldb stopped it when it did.
func (p *process) exitDescription() string {
	desc := "unknown exit status"
	select {
	case <-p.done:
		if p.state != nil {
			desc = p.state.String()
		}
	default:
		desc = "running"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reason != "" {
		desc += " (stopped by plldb: " + p.reason + ")"
	}
	return desc
}

type initParams struct {
	Handler          string   `json:"handler"`
	CodeDir          string   `json:"codeDir"`
	LayerDirs        []string `json:"layerDirs"`
	Debug            bool     `json:"debug"`
	InProcessAdapter bool     `json:"inProcessAdapter"`
	AccessToken      string   `json:"accessToken,omitempty"` // debugpy's access token; a secret
}

type initResult struct {
	PID        int    `json:"pid"`
	Version    string `json:"version"`
	Executable string `json:"executable"`
	DebugPort  int    `json:"debugPort"`
}

// pipePair joins the two pipe ends Go uses into the stream jsonrpc2 wants.
type pipePair struct {
	r *os.File // from Python (its fd 4)
	w *os.File // to Python (its fd 3)

	mu      sync.Mutex
	pending []byte // small event frames, written ahead of the next message (see dataOut)
}

func (p *pipePair) Read(b []byte) (int, error) { return p.r.Read(b) }

// Write writes one message (jsonrpc2's plain stream writes each in one call), preceded by the frames queued.
func (p *pipePair) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) == 0 {
		return p.w.Write(b)
	}
	buf := append(p.pending, b...)
	p.pending = nil
	if _, err := p.w.Write(buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// queue has frame written ahead of the next message.
func (p *pipePair) queue(frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = append(p.pending, frame...)
}

func (p *pipePair) Close() error { return errors.Join(p.w.Close(), p.r.Close()) }

// spawn starts sb's process with env and waits until it has answered initialize.
func (e *Executor) spawn(ctx context.Context, sb *sandbox, env []string) (*process, error) {
	// Reserve the process's four goroutines (the data-pipe, stdout and stderr readers, and the waiter that reaps
	// it) while holding mu, so Close (which sets closed under mu and then waits) never races a late Add.
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.wg.Add(4)
	e.mu.Unlock()
	started := false
	defer func() {
		if !started {
			e.wg.Add(-4)
		}
	}()
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (*os.File, *os.File, error) {
		r, w, err := os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	toPyR, toPyW, err1 := pipe()
	fromPyR, fromPyW, err2 := pipe()
	outR, outW, err3 := pipe()
	errR, errW, err4 := pipe()
	dataToPyR, dataToPyW, err5 := pipe()
	dataFromPyR, dataFromPyW, err6 := pipe()
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		closeAll()
		return nil, fmt.Errorf("create pipes: %w", err)
	}
	cmd := exec.Command(e.python, e.args...)
	cmd.Dir = e.spec.CodeDir
	cmd.Env = env
	cmd.Stdout = outW
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{toPyR, fromPyW, dataToPyR, dataFromPyW} // fds 3, 4, 5, 6
	// Its own process group, so stop reaches the handler's subprocesses and a Ctrl-C meant for plldb does not
	// reach the function.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("start %s: %w", e.python, err)
	}
	// The child holds its ends now; closing ours lets EOF arrive when it exits.
	toPyR.Close()
	fromPyW.Close()
	outW.Close()
	errW.Close()
	dataToPyR.Close()
	dataFromPyW.Close()

	p := &process{pid: cmd.Process.Pid, done: make(chan struct{}), tail: &tailBuffer{max: 8 << 10},
		dataIn: newDataIn()}
	ctl := &pipePair{r: fromPyR, w: toPyW}
	p.dataOut = &dataOut{w: dataToPyW, ctl: ctl}
	started = true
	var readers sync.WaitGroup
	readers.Add(3)
	go func() { defer e.wg.Done(); defer readers.Done(); defer dataFromPyR.Close(); p.dataIn.run(dataFromPyR) }()
	go func() { defer e.wg.Done(); defer readers.Done(); e.readOutput(outR, "stdout", nil) }()
	go func() { defer e.wg.Done(); defer readers.Done(); e.readOutput(errR, "stderr", p.tail) }()

	p.conn = jsonrpc2.NewConn(e.life, jsonrpc2.NewPlainObjectStream(ctl),
		rpcHandler{e}, jsonrpc2.SetLogger(slogPrintf{e.log}))
	go func() {
		defer e.wg.Done()
		_ = cmd.Wait() // the exit status is in ProcessState
		p.state = cmd.ProcessState
		// Let the connection read what the process wrote before it died (a handler's last log lines before
		// os._exit): its end of the pipe is closed now, so the reader reaches EOF after the last message.
		select {
		case <-p.conn.DisconnectNotify():
		case <-time.After(time.Second):
		}
		p.conn.Close()
		dataToPyW.Close()
		// Output pipes close when the last holder exits; a detached grandchild may hold them for ever.
		if !waitTimeout(&readers, time.Second) {
			outR.Close()
			errR.Close()
			dataFromPyR.Close()
			readers.Wait()
		}
		close(p.done)
		e.exited(sb)
	}()

	var res initResult
	err := p.conn.Call(ctx, "initialize", initParams{
		Handler:          e.spec.Handler,
		CodeDir:          e.spec.CodeDir,
		LayerDirs:        e.spec.LayerDirs,
		Debug:            e.spec.Debug,
		InProcessAdapter: !e.spec.adapterProcess,
		AccessToken:      e.debugToken,
	}, &res)
	if err == nil {
		err = e.checkVersion(res.Version)
	}
	if err != nil {
		if exitedEarly(err) {
			// It is exiting by itself: let its exit status, not our kill, explain the failure.
			select {
			case <-p.done:
			case <-time.After(stopGrace):
			}
		}
		p.stop("start-up failed", 0)
		<-p.done
		return nil, e.startError(p, err)
	}
	p.debugPort = res.DebugPort
	p.version = res.Version
	e.log.Debug("executor ready", "pid", p.pid, "python", e.python, "version", res.Version, "debugPort", res.DebugPort)
	return p, nil
}

func (e *Executor) startError(p *process, err error) error {
	var rpcErr *jsonrpc2.Error
	switch {
	case errors.As(err, &rpcErr) && rpcErr.Code == codeNoDebugpy:
		return fmt.Errorf("function %s: debugging needs debugpy, which %s cannot import (%s); install it with: %s -m pip install debugpy==%s",
			e.spec.LogicalID, e.python, rpcErr.Message, e.python, DebugpyVersion)
	case exitedEarly(err):
		out := strings.TrimSpace(p.tail.String())
		if out != "" {
			out = ":\n" + out
		}
		return fmt.Errorf("function %s: executor %s exited during start-up (%s)%s", e.spec.LogicalID, e.python, p.exitDescription(), out)
	default:
		return fmt.Errorf("function %s: start executor %s: %w", e.spec.LogicalID, e.python, err)
	}
}

// exitedEarly reports whether a start-up call failed because the process went away: the connection closed, or
// the write of the request met a pipe nobody reads any more.
func exitedEarly(err error) bool {
	return errors.Is(err, jsonrpc2.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe)
}

func (e *Executor) checkVersion(v string) error {
	major, minor, ok := majorMinor(v)
	if !ok {
		return fmt.Errorf("executor reported an unreadable Python version %q", v)
	}
	if major != 3 || minor < 9 {
		return fmt.Errorf("python %s is too old: the executor needs Python 3.9 or later", v)
	}
	if want := runtimeVersion(e.spec.Runtime); want != "" && want != fmt.Sprintf("%d.%d", major, minor) {
		e.log.Warn("interpreter does not match the function's runtime", "python", e.python, "version", v, "runtime", e.spec.Runtime)
	}
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// readOutput forwards the process's own stdout/stderr (output outside any invocation) line by line.
func (e *Executor) readOutput(r *os.File, stream string, tail *tailBuffer) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			text := string(line)
			if tail != nil {
				tail.Write(text)
			}
			e.emit(LogLine{Stream: stream, Text: text, Time: time.Now()})
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

func (e *Executor) emit(l LogLine) {
	if e.onLog != nil {
		e.onLog(l)
		return
	}
	e.log.Info("function output", "requestId", l.RequestID, "stream", l.Stream, "text", strings.TrimRight(l.Text, "\n"))
}

// rpcHandler takes the executor's notifications.
type rpcHandler struct{ e *Executor }

func (h rpcHandler) Handle(ctx context.Context, c *jsonrpc2.Conn, r *jsonrpc2.Request) {
	if r.Method == "log" && r.Params != nil {
		var l struct {
			RequestID string  `json:"requestId"`
			Stream    string  `json:"stream"`
			Text      string  `json:"text"`
			Frame     uint32  `json:"frame"`
			Record    *string `json:"record"` // absent: the text after the lead
			Lead      string  `json:"lead"`
			Time      int64   `json:"time"` // µs since the epoch, when the record was written
		}
		if err := json.Unmarshal(*r.Params, &l); err != nil {
			h.e.log.Warn("executor sent a malformed log notification", "err", err)
			return
		}
		line := LogLine{RequestID: l.RequestID, Stream: l.Stream, Text: l.Text, Time: time.Now()}
		if l.Frame != 0 && strings.HasPrefix(l.Text, l.Lead) {
			// The frame's timestamp is the record's own, as FramedTelemetryLogSink stamps it.
			line.Frame, line.Lead = l.Frame, len(l.Lead)
			line.Record = l.Text[len(l.Lead):]
			if l.Record != nil {
				line.Record = *l.Record
			}
			if l.Time > 0 {
				line.Time = time.UnixMicro(l.Time)
			}
		}
		h.e.emit(line)
		return
	}
	if !r.Notif {
		_ = c.ReplyWithError(ctx, r.ID, &jsonrpc2.Error{Code: jsonrpc2.CodeMethodNotFound, Message: "unknown method " + r.Method})
	}
}

type slogPrintf struct{ l *slog.Logger }

func (s slogPrintf) Printf(format string, v ...any) {
	s.l.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, s...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

var _ io.ReadWriteCloser = &pipePair{}
