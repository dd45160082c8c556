package proxy

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func startTCPRelay(t *testing.T, upstream string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := newTCPRelay(upstream, slog.New(slog.DiscardHandler))
	go r.serve(ln)
	t.Cleanup(func() {
		_ = ln.Close()
		r.shutdown(time.Second)
	})
	return ln.Addr().String()
}

// TestRelayCopiesBytesBothWaysAndHalfCloses: whatever the child sends reaches the API byte for byte, the API's
// answer comes back the same, and the child's end of input reaches the API so it can finish answering.
func TestRelayCopiesBytesBothWaysAndHalfCloses(t *testing.T) {
	api, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer api.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := api.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c) // until the child's half-close arrives
		got <- b
		_, _ = c.Write(append([]byte("answer:"), b...))
	}()
	child, err := net.Dial("tcp", startTCPRelay(t, api.Addr().String()))
	require.NoError(t, err)
	defer child.Close()
	sent := []byte("POST /2018-06-01/runtime/init/error HTTP/1.1\r\nX-Odd:  spacing \r\n\r\n\x00\xff not http at all")
	_, err = child.Write(sent)
	require.NoError(t, err)
	require.NoError(t, child.(*net.TCPConn).CloseWrite())
	select {
	case b := <-got:
		assert.Equal(t, sent, b)
	case <-time.After(10 * time.Second):
		t.Fatal("the API did not get the child's bytes and end of input")
	}
	answer, err := io.ReadAll(child)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("answer:"), sent...), answer)
}

// TestRelayWithoutAPIClosesTheChildsConnection: a dead Runtime API looks dead to the child too.
func TestRelayWithoutAPIClosesTheChildsConnection(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := dead.Addr().String()
	require.NoError(t, dead.Close())
	child, err := net.Dial("tcp", startTCPRelay(t, addr))
	require.NoError(t, err)
	defer child.Close()
	_ = child.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = child.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
}

// TestRelayShutdownCutsWhatIsLeft: a poll that would never end is closed after the grace.
func TestRelayShutdownCutsWhatIsLeft(t *testing.T) {
	api, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer api.Close()
	go func() {
		c, err := api.Accept()
		if err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r := newTCPRelay(api.Addr().String(), slog.New(slog.DiscardHandler))
	go r.serve(ln)
	child, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer child.Close()
	_, err = child.Write([]byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n"))
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, ln.Close())
	start := time.Now()
	r.shutdown(200 * time.Millisecond)
	assert.Less(t, time.Since(start), 5*time.Second)
	_ = child.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = child.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the child's connection is closed")
}
