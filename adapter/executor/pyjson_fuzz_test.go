package executor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plldb/plldb/testfixtures/pyenv"
)

// pyJSONHelper is one long-running Python that parses what it is given the way executor.py does, so a fuzz run
// pays for one interpreter start, not one per input. Protocol on stdin: "<mode> <length>\n<bytes>"; one answer
// line on stdout: "ok", or "err <ExceptionType>: <message>" (the message cut at 200 characters). Modes:
//
//	data    executor.py's event decoding: json.loads of the event's bytes from the data pipe
//	strict  RFC 8259 only: the bytes must be UTF-8 (no BOM), and NaN / Infinity are refused
const pyJSONHelper = `
import json, sys
r, w = sys.stdin.buffer, sys.stdout
def no_constant(name):
    raise ValueError("non-standard constant " + name)
while True:
    head = r.readline()
    if not head:
        break
    mode, n = head.split()
    data = r.read(int(n))
    try:
        if mode == b"data":
            json.loads(data)
        else:
            json.loads(data.decode("utf-8"), parse_constant=no_constant)
        w.write("ok\n")
    except BaseException as e:
        w.write("err %s: %s\n" % (type(e).__name__, str(e)[:200].replace("\n", " ")))
    w.flush()
`

type pyJSON struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

var (
	pyJSONOnce sync.Once
	pyJSONProc *pyJSON
	pyJSONErr  error
)

// pythonJSON starts the helper once per process (every fuzz worker is a process of its own).
func pythonJSON(t testing.TB) *pyJSON {
	pyJSONOnce.Do(func() {
		cmd := exec.Command(pyenv.Python(t), "-c", pyJSONHelper)
		in, err := cmd.StdinPipe()
		if err != nil {
			pyJSONErr = err
			return
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			pyJSONErr = err
			return
		}
		if err := cmd.Start(); err != nil {
			pyJSONErr = err
			return
		}
		pyJSONProc = &pyJSON{cmd: cmd, in: in, out: bufio.NewReader(out)}
	})
	if pyJSONErr != nil {
		t.Fatalf("start the Python JSON helper: %v", pyJSONErr)
	}
	return pyJSONProc
}

// parse answers "" when Python accepts data in the mode, else Python's exception.
func (p *pyJSON) parse(t testing.TB, mode string, data []byte) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := fmt.Fprintf(p.in, "%s %d\n", mode, len(data)); err != nil {
		t.Fatalf("Python JSON helper: %v", err)
	}
	if _, err := p.in.Write(data); err != nil {
		t.Fatalf("Python JSON helper: %v", err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("Python JSON helper died: %v", err)
	}
	line = strings.TrimSuffix(line, "\n")
	if line == "ok" {
		return ""
	}
	return strings.TrimPrefix(line, "err ")
}

// unmarshalExecutor is a real executor for the events Python's json cannot decode, started once per process (a
// fuzz run's workers are processes of their own) and closed when the fuzz target ends.
//
// It is asked once per kind of failure (the exception's type) and process: executor.py catches every exception
// of the one json.loads it makes of the event's bytes, so more events of a kind would only test that again, at
// two round trips each, which stalls the fuzzer while it minimizes every new input that reaches here (and the
// executor's goroutines give it spurious new coverage).
type unmarshalExecutor struct {
	once    sync.Once
	e       *Executor
	err     error
	dir     string
	mu      sync.Mutex
	checked map[string]bool
}

// first tells whether kind has not been checked yet in this process, and marks it checked.
func (u *unmarshalExecutor) first(kind string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.checked[kind] {
		return false
	}
	u.checked[kind] = true
	return true
}

func (u *unmarshalExecutor) get(t testing.TB) *Executor {
	u.once.Do(func() {
		if err := os.WriteFile(u.dir+"/app.py", []byte("def handler(event, context):\n    return {'type': type(event).__name__}\n"), 0o644); err != nil {
			u.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		u.e, u.err = Start(ctx, Spec{LogicalID: "Fn", Handler: "app.handler", CodeDir: u.dir, Python: pyenv.Python(t)}, nil)
	})
	if u.err != nil {
		t.Fatalf("start an executor: %v", u.err)
	}
	return u.e
}

func (u *unmarshalExecutor) close() {
	if u.e != nil {
		_ = u.e.Close()
	}
}

// FuzzPythonAgreesOnEvents feeds the same bytes to the Go side's check of an invocation event (invokeParams,
// which decides what is sent to executor.py) and to Python's json, the way executor.py decodes it (json.loads of
// the event's bytes from the data pipe):
//
//   - what Go accepts, Python must parse, or else the executor must answer Runtime.UnmarshalError for that
//     invocation only, as Lambda's runtime does, and go on answering others in the same process. Go's check
//     (json.Valid, or wire.Valid) accepts some JSON Python cannot decode: invalid UTF-8 inside a string
//     (Lambda's Invoke API refuses it, and so does plldb's, but events reach the executor by other ways
//     too), nesting deeper than about 990 (Python's recursion limit; Go allows 10,000) and integers of more
//     than 4,300 digits (Python 3.11's int_max_str_digits). Those are checked through a real executor;
//   - what Go refuses, Python must refuse too when held to RFC 8259 (UTF-8 without BOM, no NaN/Infinity):
//     otherwise Go refuses valid JSON. Python's extensions (NaN, Infinity, a UTF-8 BOM, UTF-16/32 input) are
//     JSON that Lambda's Invoke API refuses as well, so Go refusing them is right.
func FuzzPythonAgreesOnEvents(f *testing.F) {
	for _, s := range []string{
		`{"a": 1}`, `[]`, `"x"`, `0`, `-0.0e-0`, `1e400`, `true`, `null`, ` {"a" : [1, 2, {"b": null}]} `,
		`NaN`, `[Infinity]`, `{"a": -Infinity}`, "\ufeff{}", `{"a": "\ud800"}`, `"\u2028<>&"`, "\"\xff\"", "\"\x01\"",
		`{"a": 1,}`, `[1 2]`, `01`, `1.`, `.5`, `+1`, `"\x"`, `{"a"}`, `[`, `{}{}`, "\x00\x00\x00[\x00\x00\x00]",
		strings.Repeat("[", 500) + strings.Repeat("]", 500),
		`{"big": "` + strings.Repeat("x", 40<<10) + `"}`, // over inlineMax
	} {
		f.Add([]byte(s))
	}
	e := &Executor{spec: Spec{FunctionName: "fn", Region: "us-east-1", TimeoutSec: 3}}
	undecodable := &unmarshalExecutor{dir: f.TempDir(), checked: map[string]bool{}}
	f.Cleanup(undecodable.close)
	f.Fuzz(func(t *testing.T, event []byte) {
		if len(event) == 0 {
			return // an empty event is sent as {}
		}
		py := pythonJSON(t)
		p, err := e.invokeParams(Invocation{Event: event})
		if err != nil {
			if pyErr := py.parse(t, "strict", event); pyErr == "" {
				t.Fatalf("Go refuses an event that is valid JSON to Python (RFC 8259 strict): %v\n%q", err, event)
			}
			return
		}
		pyErr := py.parse(t, "data", p.event)
		kind, msg, _ := strings.Cut(pyErr, ": ")
		msg = simplejsonWording(msg)
		if pyErr == "" || !undecodable.first(kind) {
			return
		}
		x := undecodable.get(t)
		pid := x.PID()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := x.Invoke(ctx, Invocation{Event: event})
		if err != nil {
			t.Fatalf("Python cannot decode an event Go accepts (%s), and the executor did not answer: %v\n%q", pyErr, err, event)
		}
		switch {
		case out.Err == nil && strings.HasPrefix(pyErr, "RecursionError"):
			// Python's recursion limit counts the frames below json.loads too, which are not the same in the
			// helper and in the executor's invocation thread: an event at the very limit may pass in one only.
		case out.Err == nil:
			t.Fatalf("Python cannot decode an event Go accepts (%s), but the executor answered %s\n%q", pyErr, out.Payload, event)
		case out.Err.ErrorType != "Runtime.UnmarshalError" || !strings.HasPrefix(out.Err.ErrorMessage, "Unable to unmarshal input: "+msg):
			t.Fatalf("Python cannot decode an event Go accepts (%s); the executor answered %+v, want Runtime.UnmarshalError\n%q", pyErr, out.Err, event)
		}
		next, err := x.Invoke(ctx, Invocation{Event: []byte(`{"next": true}`)})
		if err != nil || next.Err != nil || string(next.Payload) != `{"type": "dict"}` {
			t.Fatalf("after an undecodable event (%s), the next invocation failed: %v %+v %s\n%q", pyErr, err, next.Err, next.Payload, event)
		}
		if x.PID() != pid {
			t.Fatalf("an undecodable event (%s) restarted the executor\n%q", pyErr, event)
		}
	})
}
