package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
)

// memConn is the side of a connection answers uses: reads come from r, writes go to w.
type memConn struct {
	net.Conn
	r io.Reader
	w *bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// FuzzSelectorAnswers feeds arbitrary bytes as the Runtime API's side of a relayed connection. Whatever they are
// (answers, invocations in any framing, garbage, a connection cut anywhere), the selector must not fail
// differently from a byte relay: when nothing in them mentions a knock, the child gets exactly the same bytes.
// When something does, the child never gets more than the API sent, and nothing is sent upstream (with
// unusable selective settings no knock is honoured).
func FuzzSelectorAnswers(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r1\r\nLambda-Runtime-Deadline-Ms: 1\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\nHTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r2\r\nContent-Length: 4\r\n\r\nnull"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r4\r\nContent-Length: 50\r\n\r\n{\"headers\":{\"x-plldb-knock\":\"abc\"}}               "))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r5\r\nLambda-Runtime-Client-Context: {\"custom\":{\"plldbKnock\":1}}\r\nContent-Length: 2\r\n\r\n{}"))
	f.Add([]byte("HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{}"))
	f.Add([]byte("not http at all"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r6\r\nContent-Length: 10\r\n\r\n{}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p := newProxy(Config{RuntimeAPI: "127.0.0.1:1", Selective: &SelectiveConfig{Broken: errors.New("fuzzing")}})
		child := &memConn{w: &bytes.Buffer{}}
		up := &memConn{r: bytes.NewReader(in), w: &bytes.Buffer{}}
		_ = p.sel.answers(context.Background(), newRelayConn(child), up)
		low := strings.ToLower(string(in))
		if !strings.Contains(low, "plldb-knock") && !strings.Contains(low, "plldbknock") {
			if !bytes.Equal(child.w.Bytes(), in) {
				t.Fatalf("without a knock the child must get the API's bytes unchanged:\n in: %q\nout: %q", in, child.w.Bytes())
			}
		}
		if up.w.Len() != 0 {
			t.Fatalf("nothing is honoured, so nothing is polled upstream: %q", up.w.Bytes())
		}
	})
}
