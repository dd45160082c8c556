package executor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Payloads larger than inlineMax do not travel inside JSON-RPC messages: jsonrpc2 encodes and scans a
// message's params and result several times over, which for Lambda's 6 MB limit costs far more than running
// the handler. They go over a second pair of pipes instead, framed as "<ref> <length>\n<bytes>", and the
// JSON-RPC message names them by ref. Events are always such frames, whatever their size (see invokeParams);
// small ones travel with their request on the control pipe (see dataOut).
// Must match _INLINE_MAX in executor.py.
const inlineMax = 32 << 10

// maxBody bounds a frame from Python; Lambda's limit is 6 MB, leave room for a response that is slightly over
// (it is the caller's job to refuse those in Lambda's way).
const maxBody = 64 << 20

// dataIn collects frames from Python until the invocation that named them takes them.
type dataIn struct {
	mu        sync.Mutex
	frames    map[uint64][]byte
	abandoned map[uint64]bool
	arrived   chan struct{} // closed and replaced whenever a frame arrives
	err       error         // set when the pipe ended
}

func newDataIn() *dataIn {
	return &dataIn{frames: map[uint64][]byte{}, abandoned: map[uint64]bool{}, arrived: make(chan struct{})}
}

func (d *dataIn) run(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	err := func() error {
		for {
			header, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			refStr, sizeStr, ok := strings.Cut(strings.TrimSuffix(header, "\n"), " ")
			ref, err1 := strconv.ParseUint(refStr, 10, 64)
			size, err2 := strconv.Atoi(sizeStr)
			if !ok || err1 != nil || err2 != nil || size < 0 || size > maxBody {
				return fmt.Errorf("malformed data frame header %q", header)
			}
			body := make([]byte, size)
			if _, err := io.ReadFull(br, body); err != nil {
				return fmt.Errorf("data frame %d: %w", ref, err)
			}
			d.mu.Lock()
			if d.abandoned[ref] {
				delete(d.abandoned, ref)
			} else {
				d.frames[ref] = body
			}
			close(d.arrived)
			d.arrived = make(chan struct{})
			d.mu.Unlock()
		}
	}()
	d.mu.Lock()
	d.err = err
	close(d.arrived)
	d.mu.Unlock()
}

// take waits for frame ref; it fails once the pipe has ended without it, or when stop is closed.
func (d *dataIn) take(ref uint64, stop <-chan struct{}) ([]byte, error) {
	for {
		d.mu.Lock()
		if b, ok := d.frames[ref]; ok {
			delete(d.frames, ref)
			d.mu.Unlock()
			return b, nil
		}
		if d.err != nil {
			err := d.err
			d.mu.Unlock()
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				err = errors.New("executor exited")
			}
			return nil, fmt.Errorf("payload %d never arrived: %w", ref, err)
		}
		ch := d.arrived
		d.mu.Unlock()
		select {
		case <-ch:
		case <-stop:
			d.abandon(ref)
			return nil, fmt.Errorf("payload %d: gave up waiting", ref)
		}
	}
}

// abandon drops frame ref now or when it arrives: its invocation no longer wants it.
func (d *dataIn) abandon(ref uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.frames[ref]; ok {
		delete(d.frames, ref)
		return
	}
	if d.err == nil {
		d.abandoned[ref] = true
	}
}

// dataOut writes frames to Python.
type dataOut struct {
	mu sync.Mutex
	w  *os.File // the data pipe
	// ctl is the control pipe jsonrpc2 writes requests to. Frames up to inlineMax go there instead, in the same
	// write as the request naming them (or one before it): executor.py's main loop then has the event when it
	// reads the request, and the invocation's thread finds it at once. On the data pipe, or in a write of its
	// own, a small event costs a system call and wake-ups of Python's threads: 30–50 µs more per invocation, a
	// third of a trivial one.
	ctl *pipePair
}

func (d *dataOut) send(ref uint64, body []byte) error {
	if len(body) <= inlineMax {
		frame := make([]byte, 0, len(body)+24)
		frame = fmt.Appendf(frame, "%d %d\n", ref, len(body))
		d.ctl.queue(append(frame, body...))
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := fmt.Fprintf(d.w, "%d %d\n", ref, len(body)); err != nil {
		return fmt.Errorf("send body %d: %w", ref, err)
	}
	if _, err := d.w.Write(body); err != nil {
		return fmt.Errorf("send body %d: %w", ref, err)
	}
	return nil
}
