package executor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/sourcegraph/jsonrpc2"

	"github.com/plldb/plldb/testfixtures/pyenv"
)

// pyJSONHelper is one long-running Python that parses what it is given the way executor.py does, so a fuzz run
// pays for one interpreter start, not one per input. Protocol on stdin: "<mode> <length>\n<bytes>"; one answer
// line on stdout: "ok", or "err <ExceptionType>: <message>". Modes:
//
//	line    executor.py's main loop: json.loads of the JSON-RPC request line, which must give an object
//	data    executor.py's big-event path: json.loads of the event's bytes from the data pipe
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
        if mode == b"line":
            if not isinstance(json.loads(data), dict):
                raise ValueError("not an object")
        elif mode == b"data":
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

// knownGap tells the disagreements this fuzz target found that the executor's check (invokeParams, which
// only asks wire.Valid) still lets through, so that a fuzz run finds new ones instead of these again:
//
//   - invalid UTF-8 inside a JSON string: Go's JSON syntax check accepts it, Python cannot decode the line
//     (UnicodeDecodeError). Lambda's Invoke API refuses such a body, and so does plldb's now
//     (adapter/local), so no caller reaches the executor with one.
//   - nesting deeper than about 990 (RecursionError; Go's check allows 10,000 like encoding/json), and
//   - integers of more than 4,300 digits (Python 3.11's int_max_str_digits). awslambdaric fails on these
//     two as well (Runtime.UnmarshalError in Lambda).
//
// On the inline path executor.py cannot then read the request at all: a too-deep event kills its main loop
// (the caller gets Runtime.ExitError), the others get the request refused without an id (the caller waits
// for the function's timeout, 900 s while debugging). The executor should refuse them itself and answer
// Runtime.UnmarshalError as Lambda does (issue 13 note); until then they are skipped here, not failed.
func knownGap(pyErr string) bool {
	return strings.HasPrefix(pyErr, "RecursionError") || strings.HasPrefix(pyErr, "UnicodeDecodeError") ||
		strings.Contains(pyErr, "Exceeds the limit (4300 digits)")
}

// FuzzPythonAgreesOnEvents feeds the same bytes to the Go side's check of an invocation event (invokeParams,
// which decides what is sent to executor.py) and to Python's json, the way executor.py reads it:
//
//   - what Go accepts, Python must parse, on the path the executor takes (inline in the JSON-RPC line, or as
//     raw bytes on the data pipe for events over inlineMax): otherwise a caller's event reaches Python as
//     something it cannot read;
//   - what Go refuses, Python must refuse too when held to RFC 8259 (UTF-8 without BOM, no NaN/Infinity):
//     otherwise Go refuses valid JSON. Python's extensions (NaN, Infinity, a UTF-8 BOM, UTF-16/32 input) are
//     JSON that Lambda's Invoke API refuses as well, so Go refusing them is right.
func FuzzPythonAgreesOnEvents(f *testing.F) {
	for _, s := range []string{
		`{"a": 1}`, `[]`, `"x"`, `0`, `-0.0e-0`, `1e400`, `true`, `null`, ` {"a" : [1, 2, {"b": null}]} `,
		`NaN`, `[Infinity]`, `{"a": -Infinity}`, "\ufeff{}", `{"a": "\ud800"}`, `"\u2028<>&"`, "\"\xff\"", "\"\x01\"",
		`{"a": 1,}`, `[1 2]`, `01`, `1.`, `.5`, `+1`, `"\x"`, `{"a"}`, `[`, `{}{}`, "\x00\x00\x00[\x00\x00\x00]",
		strings.Repeat("[", 500) + strings.Repeat("]", 500),
		`{"big": "` + strings.Repeat("x", 40<<10) + `"}`, // over inlineMax: the data pipe path
	} {
		f.Add([]byte(s))
	}
	e := &Executor{spec: Spec{FunctionName: "fn", Region: "us-east-1", TimeoutSec: 3}}
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
		var mode string
		var sent []byte
		if p.Event != nil {
			// What jsonrpc2's plain object stream writes: the request, JSON-encoded, one line.
			req := &jsonrpc2.Request{Method: "invoke", ID: jsonrpc2.ID{Num: 1}}
			if err := req.SetParams(p); err != nil {
				t.Fatalf("accepted event does not encode: %v\n%q", err, event)
			}
			var buf bytes.Buffer
			if err := json.NewEncoder(&buf).Encode(req); err != nil {
				t.Fatalf("accepted event does not encode: %v\n%q", err, event)
			}
			mode, sent = "line", buf.Bytes()
		} else {
			mode, sent = "data", event
		}
		if pyErr := py.parse(t, mode, sent); pyErr != "" {
			if knownGap(pyErr) {
				t.Skipf("known gap (see knownGap): %s", pyErr)
			}
			t.Fatalf("Go accepts an event that executor.py cannot read (%s path): %s\n%q", mode, pyErr, event)
		}
	})
}
