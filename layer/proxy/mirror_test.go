package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

// The child → API copier of a relayed connection, with a mirrored invocation pending: it switches from splicing
// to reading, hands the answer's body to the mirror, and passes every byte on exactly as the child sent it (a
// chunked answer with a trailer, header spellings net/http would change), then splices again.
func TestMirrorCopierPassesRequestsOnByteForByte(t *testing.T) {
	child, childSide := tcpPair(t) // the runtime, and the proxy's end of its connection
	upSide, api := tcpPair(t)      // the proxy's connection to the Runtime API, and the API's end
	p := newProxy(Config{RuntimeAPI: "127.0.0.1:1", Selective: &SelectiveConfig{}})
	rc := newRelayConn(childSide)
	copied := make(chan error, 1)
	go func() {
		err := p.sel.requests(rc, upSide)
		_ = upSide.(*net.TCPConn).CloseWrite()
		copied <- err
	}()
	var got bytes.Buffer
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		_, _ = io.Copy(&got, api)
	}()

	// Before any mirror: spliced.
	first := "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"
	_, err := io.WriteString(child, first)
	require.NoError(t, err)

	m := &mirrorInv{inv: runtimeapi.Invocation{RequestID: "req-1"}, answer: make(chan wire.Deployed, 1),
		abandon: make(chan struct{}), finished: make(chan struct{}), handed: time.Now()}
	require.True(t, rc.arm(m), "the copier switched to reading")
	deployed := make(chan wire.Deployed, 1)
	go func() {
		select {
		case d := <-m.answer:
			deployed <- d
		case <-m.abandon:
		}
		close(m.finished)
	}()

	answer := "POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: x\r\ncontent-type:  application/json\r\n" +
		"Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-odd-CASE: kept\r\nLambda-Runtime-Function-Error-Type: Stray\r\n\r\n" +
		"7\r\n{\"a\": 1\r\n3;ext=1\r\n, 2\r\n1\r\n}\r\n0\r\nX-Sum: 3\r\n\r\n"
	other := "POST /2018-06-01/runtime/invocation/req-0/error HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	next := "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nUser-Agent: py\r\n\r\n"
	for _, part := range []string{other, answer, next} {
		_, err = io.WriteString(child, part)
		require.NoError(t, err)
	}
	select {
	case d := <-deployed:
		assert.Equal(t, "req-1", d.RequestID)
		assert.Equal(t, `{"a": 1, 2}`, string(d.Payload), "the body as the runtime posted it, chunks joined")
		assert.Equal(t, "application/json", d.ContentType)
		assert.False(t, d.Error)
		assert.Empty(t, d.ErrorType, "a response has no error type, whatever headers it has")
		assert.NoError(t, d.Check("req-1"), "what the developer side accepts")
	case <-time.After(10 * time.Second):
		t.Fatal("the mirror never got the answer")
	}
	require.Eventually(t, func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return !rc.reading && rc.pending == nil
	}, 10*time.Second, 5*time.Millisecond, "splicing again once the answer was seen")
	last := "POST /2018-06-01/runtime/invocation/req-2/response HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnull"
	_, err = io.WriteString(child, last)
	require.NoError(t, err)
	require.NoError(t, child.(*net.TCPConn).CloseWrite())
	select {
	case err := <-copied:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the copier did not end with the child's input")
	}
	<-apiDone
	assert.Equal(t, first+other+answer+next+last, got.String(), "the API got every byte as sent")
}

// Garbage while a mirror waits: passed on as it is, the mirror dropped, and splicing resumes.
func TestMirrorCopierGivesUpOnWhatIsNotHTTP(t *testing.T) {
	child, childSide := tcpPair(t)
	upSide, api := tcpPair(t)
	p := newProxy(Config{RuntimeAPI: "127.0.0.1:1", Selective: &SelectiveConfig{}})
	rc := newRelayConn(childSide)
	copied := make(chan error, 1)
	go func() {
		err := p.sel.requests(rc, upSide)
		_ = upSide.(*net.TCPConn).CloseWrite()
		copied <- err
	}()
	m := &mirrorInv{inv: runtimeapi.Invocation{RequestID: "req-1"}, answer: make(chan wire.Deployed, 1),
		abandon: make(chan struct{}), finished: make(chan struct{})}
	require.True(t, rc.arm(m))
	junk := "\x00\x01 not a request at all\r\n\r\nmore bytes after it"
	_, err := io.WriteString(child, junk)
	require.NoError(t, err)
	select {
	case <-m.abandon:
	case <-time.After(10 * time.Second):
		t.Fatal("the mirror was not dropped")
	}
	_, err = io.WriteString(child, " and the rest")
	require.NoError(t, err)
	require.NoError(t, child.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(api)
	require.NoError(t, err)
	assert.Equal(t, junk+" and the rest", string(got))
	select {
	case err := <-copied:
		if err != nil {
			assert.True(t, errors.Is(err, io.EOF), "%v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the copier did not end")
	}
}
