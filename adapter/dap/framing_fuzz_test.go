package dap

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// fuzzConn is a client connection that sends data and then hangs up; what the adapter writes is dropped.
type fuzzConn struct {
	net.Conn // nil: only the methods below are used
	r        *bytes.Reader
}

func (c *fuzzConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *fuzzConn) Close() error                { return nil }
func (c *fuzzConn) RemoteAddr() net.Addr        { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4711} }

// FuzzDAPFraming feeds arbitrary bytes from an IDE (or, with --allow-remote, anyone on the network) to the
// adapter's reading of DAP: readFrame and parseObj as the session's reader uses them, and the
// token gate in front of remote sessions. Each must end in an error or messages, never panic or hang, and the
// gate must never let a launch through without the token.
func FuzzDAPFraming(f *testing.F) {
	msg := func(s string) string { return "Content-Length: " + itoa(len(s)) + "\r\n\r\n" + s }
	for _, s := range []string{
		msg(`{"seq":1,"type":"request","command":"initialize","arguments":{"adapterID":"plldb"}}`),
		msg(`{"seq":1,"type":"request","command":"initialize"}`) + msg(`{"seq":2,"type":"request","command":"launch","arguments":{"token":"0123456789abcdef-fuzz"}}`) + msg(`{"seq":3,"type":"request","command":"evaluate"}`),
		msg(`{"seq":1,"type":"request","command":"launch","arguments":{"token":"wrong"}}`),
		msg(`{"seq":1,"type":"request","command":"attach","arguments":null}`),
		msg(`[1,2]`), msg(`null`), msg(``), msg(`{"type":"request","command":{"x":1}}`),
		"Content-Length: 10\r\n\r\n{}",
		"Content-Length: 4194305\r\n\r\n{}",
		"Content-Length: 99999999999999999999\r\n\r\n",
		"Content-Length: -1\r\n\r\n",
		"Content-Length: 2\r\n\r\r\n{}",
		"Content-Type: json\r\nContent-Length: 2\r\n\r\n{}",
		"content-length: 2\r\n\r\n{}",
		"\r\n\r\n",
		"\r",
		"no header at all",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			// The session's reader.
			br := bufio.NewReader(bytes.NewReader(data))
			for i := 0; ; i++ {
				content, err := readFrame(br)
				if err != nil {
					break
				}
				if i > len(data) {
					t.Errorf("more messages than input bytes")
					return
				}
				if m, err := parseObj(content); err == nil {
					_, _ = m.num("seq")
					_ = m.str("type")
					_, _ = m.sub("arguments")
					_ = m.bytes()
				}
			}
			// The token gate of a remote listener, reading until it refuses or the input ends.
			const token = "0123456789abcdef-fuzz"
			g := newTokenGate(&fuzzConn{r: bytes.NewReader(data)}, token, slog.New(slog.DiscardHandler))
			defer g.Close()
			admitted, _ := io.ReadAll(g) // whatever the gate let through before it refused or the input ended
			ab := bufio.NewReader(bytes.NewReader(admitted))
			for first := true; ; {
				content, err := readFrame(ab)
				if err != nil {
					break
				}
				m, _ := parseObj(content)
				switch c := m.str("command"); {
				case c == "initialize" || c == "disconnect":
				case first && (c == "launch" || c == "attach"):
					first = false
					if args, _ := m.sub("arguments"); args["token"] != nil {
						t.Errorf("the token reached the session: %s", content)
					}
				case first:
					t.Errorf("the gate let %q through before an authenticating launch", c)
				}
				if !first {
					break // after it the gate passes bytes through unread
				}
			}
			if g.authed.Load() && !bytes.Contains(data, []byte(token)) {
				t.Errorf("authenticated without the token in the input")
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("reading %d bytes did not end", len(data))
		}
	})
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
