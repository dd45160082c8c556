//go:build linux

package dap

import (
	"net"
	"syscall"
)

// quickAckConn re-arms TCP_QUICKACK before every read. debugpy writes each message's header and body with two
// send calls on a socket with Nagle's algorithm on, so the body waits for the header's ACK, which Linux delays
// by up to 40 ms: every request round trip to debugpy took ~45 ms. Acknowledging at once removes that wait.
type quickAckConn struct {
	net.Conn
	rc syscall.RawConn
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	_ = c.rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	return c.Conn.Read(p)
}

func quickAck(conn net.Conn) net.Conn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return conn
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return conn
	}
	return &quickAckConn{Conn: conn, rc: rc}
}
