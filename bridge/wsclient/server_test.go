package wsclient

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/wire"
)

// testServer is a stand-in relay on 127.0.0.1: it parses envelopes, answers ping with pong, echoes everything
// else unchanged (chunks included, like the relay, which routes chunks without reassembling them), can refuse or
// drop connections on demand, closes connections idle longer than idle, and records the payload size of every
// frame it receives by parsing frame headers on the raw TCP byte stream.
type testServer struct {
	t    testing.TB
	hs   *httptest.Server
	url  string
	idle time.Duration // 0: never close idle connections
	wg   sync.WaitGroup

	mu        sync.Mutex
	nextID    int
	conns     map[int]*srvConn
	auth      []string // Authorization header of every handshake attempt
	refuse    int      // HTTP status to refuse handshakes with; 0 accepts
	refused   int
	noPong    bool // swallow pings without answering
	frames    []frameInfo
	msgSizes  []int
	pings     int
	got       []*wire.Envelope  // reassembled envelopes received, pings excluded
	firstType map[int]wire.Type // type of the first envelope on each connection
	closes    map[int]int       // close code each connection's client sent, by connection
	badMsgs   int               // messages the server could not parse or reassemble
	reasm     *wire.Reassembler // guarded by mu
	// reply, when set, replaces the echo: every whole envelope received is answered with what reply returns
	// (nothing for nil), split by the server itself with wire.Split.
	reply func(*wire.Envelope) *wire.Envelope
}

type frameInfo struct {
	op   byte
	fin  bool
	size int
}

type srvConn struct {
	id  int
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (sc *srvConn) write(b []byte) error {
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	_ = sc.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return sc.ws.WriteMessage(websocket.TextMessage, b)
}

func newTestServer(t testing.TB, idle time.Duration) *testServer {
	t.Helper()
	s := &testServer{
		t:         t,
		idle:      idle,
		conns:     map[int]*srvConn{},
		firstType: map[int]wire.Type{},
		closes:    map[int]int{},
		reasm:     wire.NewReassembler(wire.ReassemblerOptions{}),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.hs.Listener = &recListener{Listener: ln, s: s}
	s.hs.Start()
	s.url = "ws" + strings.TrimPrefix(s.hs.URL, "http")
	t.Cleanup(s.Close)
	return s
}

// Close drops every connection and waits for their handlers; hijacked connections are not tracked by httptest.
func (s *testServer) Close() {
	s.dropAll()
	s.hs.Close()
	s.wg.Wait()
}

func (s *testServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	refuse := s.refuse
	if refuse != 0 {
		s.refused++
	}
	s.mu.Unlock()
	if refuse != 0 {
		http.Error(w, http.StatusText(refuse), refuse)
		return
	}
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.nextID++
	sc := &srvConn{id: s.nextID, ws: ws}
	s.conns[sc.id] = sc
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, sc.id)
		s.mu.Unlock()
		_ = ws.Close()
		s.wg.Done()
	}()
	ws.SetReadLimit(16 << 20)
	for {
		if s.idle > 0 {
			_ = ws.SetReadDeadline(time.Now().Add(s.idle))
		}
		_, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if asCloseError(err, &ce) {
				s.mu.Lock()
				s.closes[sc.id] = ce.Code
				s.mu.Unlock()
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				// Idle: close the way API Gateway does, with a close frame.
				sc.wmu.Lock()
				_ = ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseGoingAway, "idle timeout"), time.Now().Add(time.Second))
				sc.wmu.Unlock()
			}
			return
		}
		s.handle(sc, data)
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

func (s *testServer) handle(sc *srvConn, data []byte) {
	env, err := wire.Unmarshal(data)
	s.mu.Lock()
	s.msgSizes = append(s.msgSizes, len(data))
	if err != nil {
		s.badMsgs++
		s.mu.Unlock()
		return
	}
	if _, seen := s.firstType[sc.id]; !seen {
		s.firstType[sc.id] = env.T
	}
	if env.T == wire.TypePing {
		s.pings++
		noPong := s.noPong
		s.mu.Unlock()
		if noPong {
			return
		}
		pong := &wire.Envelope{V: wire.Version, T: wire.TypePong, ID: env.ID, Body: env.Body}
		b, err := wire.Marshal(pong)
		if err == nil {
			_ = sc.write(b)
		}
		return
	}
	var whole *wire.Envelope
	if env.T == wire.TypeChunk {
		whole, err = s.reasm.Add(env)
	} else {
		whole = env
	}
	if err != nil {
		s.badMsgs++
	}
	if whole != nil {
		s.got = append(s.got, whole)
	}
	reply := s.reply
	s.mu.Unlock()
	if reply == nil {
		_ = sc.write(data) // echo, byte for byte
		return
	}
	if whole == nil {
		return
	}
	if r := reply(whole); r != nil {
		msgs, err := wire.Split(r)
		if err != nil {
			s.t.Errorf("test server: split reply: %v", err)
			return
		}
		for _, m := range msgs {
			if err := sc.write(m); err != nil {
				return
			}
		}
	}
}

// dropAll cuts every connection without a close frame, as a network failure would.
func (s *testServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.conns {
		_ = sc.ws.NetConn().Close()
	}
}

// push sends raw bytes to every connection.
func (s *testServer) push(b []byte) {
	s.mu.Lock()
	conns := make([]*srvConn, 0, len(s.conns))
	for _, sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, sc := range conns {
		_ = sc.write(b)
	}
}

func (s *testServer) setRefuse(status int) {
	s.mu.Lock()
	s.refuse = status
	s.mu.Unlock()
}

func (s *testServer) setReply(f func(*wire.Envelope) *wire.Envelope) {
	s.mu.Lock()
	s.reply = f
	s.mu.Unlock()
}

func (s *testServer) setNoPong(v bool) {
	s.mu.Lock()
	s.noPong = v
	s.mu.Unlock()
}

// dials counts accepted connections.
func (s *testServer) dials() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID
}

func (s *testServer) refusedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

func (s *testServer) pingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pings
}

func (s *testServer) authHeaders() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

func (s *testServer) frameLog() []frameInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]frameInfo(nil), s.frames...)
}

func (s *testServer) received() []*wire.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*wire.Envelope(nil), s.got...)
}

func (s *testServer) openConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// recListener wraps accepted connections so every byte read from a client passes through a frame parser.
type recListener struct {
	net.Listener
	s *testServer
}

func (l *recListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recConn{Conn: c, p: &frameParser{record: l.s.recordFrame}}, nil
}

func (s *testServer) recordFrame(f frameInfo) {
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
}

type recConn struct {
	net.Conn
	p *frameParser
}

func (c *recConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.p.feed(b[:n])
	return n, err
}

// frameParser follows the client→server byte stream: it skips the HTTP upgrade request, then parses RFC 6455
// frame headers and skips payloads, reporting each frame's payload size. Only the connection's reader calls it.
type frameParser struct {
	record    func(frameInfo)
	upgraded  bool
	tail      []byte // last bytes of the request seen so far, to find "\r\n\r\n" across reads
	hdr       []byte // frame header bytes collected so far
	remaining uint64 // payload bytes of the current frame still to skip
}

func (p *frameParser) feed(b []byte) {
	for len(b) > 0 {
		if !p.upgraded {
			buf := append(append([]byte(nil), p.tail...), b...)
			i := bytes.Index(buf, []byte("\r\n\r\n"))
			if i < 0 {
				if len(buf) > 3 {
					buf = buf[len(buf)-3:]
				}
				p.tail = buf
				return
			}
			b = b[i+4-len(p.tail):]
			p.upgraded, p.tail = true, nil
			continue
		}
		if p.remaining > 0 {
			k := min(p.remaining, uint64(len(b)))
			b = b[k:]
			p.remaining -= k
			continue
		}
		p.hdr = append(p.hdr, b[0])
		b = b[1:]
		if len(p.hdr) < 2 {
			continue
		}
		need := 2
		switch p.hdr[1] & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if p.hdr[1]&0x80 != 0 {
			need += 4
		}
		if len(p.hdr) < need {
			continue
		}
		var size uint64
		switch l := p.hdr[1] & 0x7f; l {
		case 126:
			size = uint64(binary.BigEndian.Uint16(p.hdr[2:4]))
		case 127:
			size = binary.BigEndian.Uint64(p.hdr[2:10])
		default:
			size = uint64(l)
		}
		p.record(frameInfo{op: p.hdr[0] & 0x0f, fin: p.hdr[0]&0x80 != 0, size: int(size)})
		p.remaining = size
		p.hdr = p.hdr[:0]
	}
}
