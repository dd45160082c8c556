package dap

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeDebugpy answers requests with canned bodies the size of debugpy's, writing each answer's header and body
// with two writes, as debugpy does. It stands in for debugpy where only the adapter's own work is measured.
func fakeDebugpy(tb testing.TB) (port int) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = l.Close() })
	var frames []string
	for i := range 8 {
		frames = append(frames, `{"id": `+strconv.Itoa(i+3)+`, "name": "handler", "line": 8, "column": 1, `+
			`"source": {"path": "/home/dev/app/src/app.py", "sourceReference": 0}, "presentationHint": "normal"}`)
	}
	bodies := map[string]string{
		"stackTrace": `{"stackFrames": [` + strings.Join(frames, ", ") + `], "totalFrames": 8}`,
		"evaluate":   `{"result": "{'k': 'v'}", "type": "dict", "variablesReference": 7, "namedVariables": 0}`,
		"threads":    `{"threads": [{"id": 1, "name": "MainThread"}, {"id": 2, "name": "plldb-data"}, {"id": 3, "name": "plldb-invoke 1a2b3c4d-0000-4000-8000-000000000000"}]}`,
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					raw, err := readFrame(br)
					if err != nil {
						return
					}
					m, err := parseObj(raw)
					if err != nil {
						return
					}
					seq, _ := m.num("seq")
					cmd := m.str("command")
					body := `{"seq": ` + strconv.Itoa(seq+1000) + `, "type": "response", "request_seq": ` + strconv.Itoa(seq) +
						`, "success": true, "command": "` + cmd + `", "body": ` + bodies[cmd] + `}`
					if _, err := conn.Write([]byte("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")); err != nil {
						return
					}
					if _, err := conn.Write([]byte(body)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// rawClient sends requests and reads their answers with as little work of its own as it can.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
	seq  int
}

func (c *rawClient) request(tb testing.TB, command, args string) {
	c.seq++
	body := `{"seq":` + strconv.Itoa(c.seq) + `,"type":"request","command":"` + command + `"`
	if args != "" {
		body += `,"arguments":` + args
	}
	body += "}"
	_, err := c.conn.Write([]byte("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	require.NoError(tb, err)
	for {
		raw, err := readFrame(c.br)
		require.NoError(tb, err)
		if m, _ := parseObj(raw); m.str("type") == "response" {
			return
		}
	}
}

// BenchmarkRelay measures the adapter's own work per request without Python: the same requests sent through
// the adapter to a fake debugpy (adapter) and straight to it (direct). The difference is what the adapter adds
// on an otherwise idle path: its CPU time and the wake-ups of its two goroutines.
func BenchmarkRelay(b *testing.B) {
	port := fakeDebugpy(b)
	log := slog.New(slog.DiscardHandler)
	for _, command := range []string{"evaluate", "threads", "stackTrace"} {
		b.Run(command+"/direct", func(b *testing.B) {
			conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			require.NoError(b, err)
			defer conn.Close()
			conn = quickAck(conn)
			c := &rawClient{conn: conn, br: bufio.NewReader(conn)}
			args := map[string]string{"evaluate": `{"expression":"event","frameId":3,"context":"hover"}`, "stackTrace": `{"threadId":3}`}[command]
			b.ReportAllocs()
			for b.Loop() {
				c.request(b, command, args)
			}
		})
		b.Run(command+"/adapter", func(b *testing.B) {
			ideSide, adapterSide := tcpPair(b)
			s := newSession(adapterSide, Options{Logger: log})
			d, err := dialDebuggee(context.Background(), "F", port, "", log, s.onDebuggeeEvent)
			require.NoError(b, err)
			defer d.close()
			s.mu.Lock()
			s.debuggees["F"] = d
			s.lastStop = d
			s.mu.Unlock()
			t, _ := s.threads.bind(d, 3, "plldb-invoke 1a2b3c4d-0000-4000-8000-000000000000")
			s.threads.setStopped(t.id, true)
			frame := s.frames.getOwned(ref{d, 3}, t.id)
			go func() { _ = s.serveRequests() }()
			defer ideSide.Close()
			c := &rawClient{conn: ideSide, br: bufio.NewReader(ideSide)}
			args := map[string]string{
				"evaluate":   `{"expression":"event","frameId":` + strconv.Itoa(frame) + `,"context":"hover"}`,
				"stackTrace": `{"threadId":` + strconv.Itoa(t.id) + `}`,
			}[command]
			b.ReportAllocs()
			for b.Loop() {
				c.request(b, command, args)
			}
		})
	}
}

func tcpPair(tb testing.TB) (client, server net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	require.NoError(tb, err)
	server = <-accepted
	require.NotNil(tb, server)
	return client, server
}
