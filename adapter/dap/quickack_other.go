//go:build !linux

package dap

import "net"

// quickAck is Linux-only (TCP_QUICKACK); elsewhere debugpy's delayed ACKs stay as they are.
func quickAck(conn net.Conn) net.Conn { return conn }
