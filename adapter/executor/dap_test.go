package executor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dapClient is a minimal Debug Adapter Protocol client speaking raw Content-Length framed JSON.
type dapClient struct {
	t    testing.TB
	conn net.Conn
	mu   sync.Mutex
	seq  int
	msgs chan map[string]any
	done chan struct{}
}

func dialDAP(t testing.TB, port int) *dapClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 10*time.Second)
	require.NoError(t, err)
	c := &dapClient{t: t, conn: conn, msgs: make(chan map[string]any, 256), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() { conn.Close(); <-c.done })
	return c
}

func (c *dapClient) read() {
	defer close(c.done)
	defer close(c.msgs)
	br := bufio.NewReader(c.conn)
	for {
		n := 0
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-Length:"); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(buf, &m) == nil {
			c.msgs <- m
		}
	}
}

func (c *dapClient) send(command string, args any) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	b, err := json.Marshal(map[string]any{"seq": c.seq, "type": "request", "command": command, "arguments": args})
	require.NoError(c.t, err)
	_, err = fmt.Fprintf(c.conn, "Content-Length: %d\r\n\r\n%s", len(b), b)
	require.NoError(c.t, err)
	return c.seq
}

// expect returns the first message matching, skipping (and remembering nothing of) others.
func (c *dapClient) expect(what string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			require.True(c.t, ok, "DAP connection closed while waiting for %s", what)
			if match(m) {
				return m
			}
		case <-timeout:
			c.t.Fatalf("no %s from debugpy", what)
		}
	}
}

func isResponse(command string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == "response" && m["command"] == command }
}

func isEvent(event string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == "event" && m["event"] == event }
}

// authorize presents the executor's debugpy access token, as plldb's adapter does first on every connection.
func (c *dapClient) authorize(token string) {
	c.t.Helper()
	seq := c.send("pydevdAuthorize", map[string]any{"debugServerAccessToken": token})
	resp := c.expect("pydevdAuthorize response", isResponseTo(seq))
	require.Equal(c.t, true, resp["success"], "%v", resp)
}

func isResponseTo(seq int) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["type"] == "response" && m["request_seq"] == float64(seq) }
}

// attachWithBreakpoint runs the DAP handshake and sets one breakpoint.
func (c *dapClient) attachWithBreakpoint(file string, line int) {
	c.t.Helper()
	c.send("initialize", map[string]any{"clientID": "plldb-test", "adapterID": "python", "linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path"})
	require.Equal(c.t, true, c.expect("initialize response", isResponse("initialize"))["success"])
	c.send("attach", map[string]any{"justMyCode": false})
	c.expect("initialized event", isEvent("initialized"))
	c.send("setBreakpoints", map[string]any{"source": map[string]any{"path": file}, "breakpoints": []any{map[string]any{"line": line}}})
	bp := c.expect("setBreakpoints response", isResponse("setBreakpoints"))
	require.Equal(c.t, true, bp["success"], "%v", bp)
	c.send("configurationDone", map[string]any{})
	c.expect("configurationDone response", isResponse("configurationDone"))
}
