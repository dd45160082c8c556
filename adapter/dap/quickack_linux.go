//go:build linux

package dap

import (
	"net"
	"syscall"
)

// quickAckConn keeps TCP_QUICKACK armed on a connection to debugpy. debugpy writes each message's header and
// body with two send calls on a socket with Nagle's algorithm on, so the body waits for the header's ACK, which
// Linux delays by up to 40 ms: every request round trip to debugpy took ~45 ms. Acknowledging at once removes
// that wait.
//
// TCP_QUICKACK is not sticky: it takes the socket out of Linux's "pingpong" (interactive) mode, in which ACKs
// wait to ride on the next data sent, and the socket goes back into that mode only when it sends data shortly
// after receiving some (tcp_event_data_sent). Out of pingpong mode, reading a pushed segment acknowledges it
// at once (tcp_cleanup_rbuf), and setting the option also sends an ACK that is pending. So the option is
// re-armed after every write, the only thing that can turn the mode back on: once per request sent, not once
// per read (debugpy's answers take one to three reads each), which saves a setsockopt per read on the path of
// every answer. A header that arrives between a write and its re-arm is acknowledged by the re-arm itself.
type quickAckConn struct {
	net.Conn
	rc syscall.RawConn
}

func (c *quickAckConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.arm()
	return n, err
}

func (c *quickAckConn) arm() {
	_ = c.rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
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
	c := &quickAckConn{Conn: conn, rc: rc}
	c.arm() // before the first write: debugpy may speak first
	return c
}
