package gateway

import (
	"errors"
	"net"
	"time"
)

// errFrameTooBig is what a sniffed connection's Read returns once the client sent a frame whose payload exceeds
// the frame limit. gorilla/websocket hands the error back unchanged from NextReader.
var errFrameTooBig = errors.New("inbound frame exceeds the frame limit")

// frameLimiter follows the WebSocket frame headers (RFC 6455 §5.2) of a client-to-server byte stream, however
// the stream is split into reads, and reports the first frame whose payload is larger than limit. gorilla does
// not expose frames, only messages, so this is the only place API Gateway's per-frame limit can be enforced.
type frameLimiter struct {
	limit     uint64
	hdr       [14]byte // 2 fixed bytes, up to 8 extended-length bytes, 4 mask bytes
	hdrLen    int
	hdrNeed   int    // total header length, known once the first two bytes are in
	remaining uint64 // payload bytes of the current frame not yet seen
	violated  bool
	rest      []byte // after a violation: the bytes of that read following the oversized frame's header
	sawClose  bool   // a close frame's header went by
}

func newFrameLimiter(limit int) *frameLimiter {
	return &frameLimiter{limit: uint64(limit)}
}

// feed consumes the next bytes of the stream. It returns how many of them come before the header of an
// oversized frame (all of p when there is none) and whether such a frame was found. When that header is split
// across reads, its first part was already let through by earlier calls; that is harmless, since a reader
// cannot act on part of a header. Once a violation is found
// the limiter stays violated and consumes nothing more.
func (f *frameLimiter) feed(p []byte) (clean int, violated bool) {
	if f.violated {
		return 0, true
	}
	f.sawClose = false
	i := 0
	for i < len(p) {
		if f.remaining > 0 {
			skip := uint64(len(p) - i)
			if skip > f.remaining {
				skip = f.remaining
			}
			i += int(skip)
			f.remaining -= skip
			continue
		}
		// A header that began in an earlier read starts, as far as this read is concerned, at offset 0.
		hdrStart := i - f.hdrLen
		if hdrStart < 0 {
			hdrStart = 0
		}
		f.hdr[f.hdrLen] = p[i]
		f.hdrLen++
		i++
		if f.hdrLen == 2 {
			f.hdrNeed = 2
			switch f.hdr[1] & 0x7f {
			case 126:
				f.hdrNeed += 2
			case 127:
				f.hdrNeed += 8
			}
			if f.hdr[1]&0x80 != 0 {
				f.hdrNeed += 4
			}
		}
		if f.hdrLen < 2 || f.hdrLen < f.hdrNeed {
			continue
		}
		var n uint64
		switch l := f.hdr[1] & 0x7f; l {
		case 126:
			n = uint64(f.hdr[2])<<8 | uint64(f.hdr[3])
		case 127:
			for _, b := range f.hdr[2:10] {
				n = n<<8 | uint64(b)
			}
		default:
			n = uint64(l)
		}
		f.hdrLen, f.hdrNeed = 0, 0
		if n > f.limit && !f.violated {
			f.violated = true
			f.remaining = n
			f.rest = append([]byte(nil), p[i:]...) // p is the reader's buffer
			return hdrStart, true
		}
		if f.hdr[0]&0x0f == 0x8 {
			f.sawClose = true
		}
		f.remaining = n
	}
	return len(p), false
}

// watch follows the frames after a violation, only to notice the client's close frame (its answer to our
// 1009): then the connection can be hung up at once instead of after the grace period.
func (f *frameLimiter) watch(p []byte) (sawClose bool) {
	violated := f.violated
	f.violated = false
	f.limit = ^uint64(0)
	f.feed(p)
	f.violated = violated
	return f.sawClose
}

// sniffListener wraps every accepted connection in a sniffConn. The same listener serves the management API and
// the WebSocket handshakes; sniffing is switched on per connection only after a successful upgrade.
type sniffListener struct {
	net.Listener
}

func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c}, nil
}

// sniffConn passes reads through a frameLimiter once enabled. Read is only ever called by one goroutine at a
// time (the HTTP server before the hijack, the connection's reader goroutine after it), and enable is called
// between the two, so the fields need no lock.
type sniffConn struct {
	net.Conn
	lim *frameLimiter
	err error // sticky: set once an oversized frame was seen
}

func (c *sniffConn) enable(limit int) {
	c.lim = newFrameLimiter(limit)
}

func (c *sniffConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if c.lim == nil || n == 0 {
		return n, err
	}
	clean, bad := c.lim.feed(p[:n])
	if !bad {
		return n, err
	}
	// Hand over the bytes before the oversized frame so the messages they complete are still routed, as API
	// Gateway routes everything it received before the offending frame.
	c.err = errFrameTooBig
	if clean > 0 {
		return clean, nil
	}
	return 0, c.err
}

// frameTooBig reports whether the client sent an oversized frame.
func (c *sniffConn) frameTooBig() bool {
	return c.err != nil
}

// drain discards what the client still sends until it answers our close frame, closes, or the deadline
// passes. Closing a socket with unread data makes the kernel send RST, which can destroy our close frame
// before the client reads it; after a 1009 the client is typically still writing the rest of its oversized
// frame.
func (c *sniffConn) drain(deadline time.Time, maxBytes int64) {
	_ = c.Conn.SetReadDeadline(deadline)
	if c.lim != nil && c.lim.violated {
		// What followed the oversized frame's header in the read that found it was never handed on.
		rest := c.lim.rest
		c.lim.rest = nil
		if c.lim.watch(rest) {
			return
		}
	}
	buf := make([]byte, 32<<10)
	var total int64
	for total < maxBytes {
		n, err := c.Conn.Read(buf)
		total += int64(n)
		if c.lim != nil && c.lim.watch(buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}
