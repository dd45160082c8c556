package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/plldb/plldb/layer/runtimeapi"
)

// childAPI is the Runtime API the child runtime sees. It is a forwarding proxy, not an emulation: every request
// of the child goes to the sandbox's real Runtime API as it was sent (method, path and query, the child's
// headers minus hop-by-hop ones, the body streamed), and the real API's answer comes back as it was given
// (status, headers, body streamed). So the limits, the error documents and the state checks the runtime meets
// are Lambda's own, and an /init/error, a 6 MB response or a 413 look to both sides as they would without plldb.
//
// The one request it does not simply forward is GET /runtime/invocation/next when a debugging session is
// configured: the proxy then polls the real /next itself, offers each invocation to the session, and hands the
// real API's answer to the child, unchanged, only for invocations the session does not take (fallback).
type childAPI struct {
	p        *proxy
	base     string // "http://" + the real Runtime API address
	upstream *http.Client
	// stop ends the handlers' waits when Run is stopping (the child exited, or ctx ended).
	stop context.Context

	readyOnce sync.Once
	ready     chan struct{} // closed on the child's first /next: its initialisation is over
	linkOnce  sync.Once
}

const nextPath = "/" + runtimeapi.APIVersion + "/runtime/invocation/next"

func newChildAPI(p *proxy, stop context.Context) *childAPI {
	return &childAPI{
		p:    p,
		base: "http://" + p.cfg.RuntimeAPI,
		upstream: &http.Client{Transport: &http.Transport{
			Proxy:       nil, // never an HTTP proxy from the environment: the Runtime API is sandbox-local
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			// The runtime keeps one connection for /next and the answers; two cover the child's and the proxy's
			// own polls in session mode.
			MaxIdleConns:        4,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     0,
			// Bodies pass as they are: no Accept-Encoding of our own, no transparent decompression.
			DisableCompression: true,
			WriteBufferSize:    64 << 10,
			ReadBufferSize:     64 << 10,
		}},
		stop:  stop,
		ready: make(chan struct{}),
	}
}

// Ready is closed on the child's first GET /next.
func (a *childAPI) Ready() <-chan struct{} { return a.ready }

func (a *childAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == nextPath {
		a.readyOnce.Do(func() { close(a.ready) })
		if a.p.sess != nil {
			a.nextWithSession(w, r)
			return
		}
		// Polling: it ends with the child's connection or with Run.
		ctx, cancel := a.withStop(r.Context())
		defer cancel()
		a.forward(ctx, w, r)
		return
	}
	// An answer (/response, /error, /init/error) or anything else: once the child sent it, it is delivered even
	// if the child exits right after, so it is detached from the child's connection, within answerTimeout.
	ctx, cancel := answerContext(r.Context())
	defer cancel()
	a.forward(ctx, w, r)
}

// withStop is ctx, also cancelled when Run stops.
func (a *childAPI) withStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(a.stop, cancel)
	return ctx, func() { stop(); cancel() }
}

// forward sends r to the real Runtime API and copies the answer back to w.
func (a *childAPI) forward(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	resp, err := a.roundTrip(ctx, r)
	if err != nil {
		a.upstreamFailed(w, r, err)
		return
	}
	defer resp.Body.Close()
	copyAnswer(w, resp, resp.Body, a.p.log)
}

// roundTrip sends the child's request r upstream with ctx.
func (a *childAPI) roundTrip(ctx context.Context, r *http.Request) (*http.Response, error) {
	body := r.Body
	if r.ContentLength == 0 {
		body = http.NoBody
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, a.base+r.URL.RequestURI(), body)
	if err != nil {
		return nil, fmt.Errorf("forward %s %s: %w", r.Method, r.URL.Path, err)
	}
	out.ContentLength = r.ContentLength
	out.Header = make(http.Header, len(r.Header))
	copyHeader(out.Header, r.Header)
	if _, ok := r.Header["User-Agent"]; !ok {
		// Go's client would add its own; the runtime sent none.
		out.Header["User-Agent"] = []string{""}
	}
	if len(r.Trailer) > 0 {
		// Filled in by the server as the body ends, before the transport writes the trailers.
		out.Trailer = r.Trailer
	}
	resp, err := a.upstream.Do(out)
	if err != nil {
		return nil, fmt.Errorf("forward %s %s: %w", r.Method, r.URL.Path, err)
	}
	return resp, nil
}

// upstreamFailed answers the child when the real Runtime API could not be reached or the child went away.
func (a *childAPI) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil || a.stop.Err() != nil {
		a.p.log.Debug("forward abandoned", "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	a.p.log.Error("the sandbox's Runtime API did not answer", "method", r.Method, "path", r.URL.Path, "err", err)
	// Without an answer to relay, close the connection as a dead Runtime API would rather than invent one.
	if rc := http.NewResponseController(w); rc != nil {
		if conn, _, herr := rc.Hijack(); herr == nil {
			_ = conn.Close()
			return
		}
	}
	http.Error(w, "plldb proxy: the sandbox's Runtime API did not answer", http.StatusBadGateway)
}

// copyAnswer writes the real API's answer to the child: status, headers minus hop-by-hop ones, body, trailers.
func copyAnswer(w http.ResponseWriter, resp *http.Response, body io.Reader, log *slog.Logger) {
	h := w.Header()
	copyHeader(h, resp.Header)
	announced := make([]string, 0, len(resp.Trailer))
	for k := range resp.Trailer {
		announced = append(announced, k)
	}
	if len(announced) > 0 {
		h.Set("Trailer", strings.Join(announced, ", "))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := copyBuffered(w, body); err != nil {
		log.Debug("relay answer body", "err", err)
		return
	}
	for k, v := range resp.Trailer {
		h[k] = v
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(dst, src, *bp)
}

// hopHeaders belong to one connection, not to the request or answer (RFC 9110 section 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade",
}

// copyHeader adds src's end-to-end headers to dst: not the hop-by-hop ones, nor those the Connection header
// names.
func copyHeader(dst, src http.Header) {
	var named []string
	for _, v := range src["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				named = append(named, http.CanonicalHeaderKey(f))
			}
		}
	}
next:
	for k, v := range src {
		for _, hop := range hopHeaders {
			if k == hop {
				continue next
			}
		}
		for _, n := range named {
			if k == n {
				continue next
			}
		}
		dst[k] = append(dst[k][:0:0], v...)
	}
}

// nextWithSession serves the child's GET /next in session mode: it polls the real /next, offers each
// invocation to the session, and gives the child the first one the session does not take, as the real API
// gave it.
func (a *childAPI) nextWithSession(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := a.withStop(r.Context())
	defer cancel()
	linked := true
	a.linkOnce.Do(func() { linked = a.p.waitLinked(ctx) })
	if !linked {
		return
	}
	for {
		resp, err := a.roundTrip(ctx, r)
		if err != nil {
			a.upstreamFailed(w, r, err)
			return
		}
		if resp.StatusCode != http.StatusOK {
			copyAnswer(w, resp, resp.Body, a.p.log)
			resp.Body.Close()
			return
		}
		event, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			a.upstreamFailed(w, r, fmt.Errorf("read invocation: %w", err))
			return
		}
		inv, perr := runtimeapi.ParseInvocation(resp.Header, event)
		switch {
		case perr != nil && errors.Is(perr, runtimeapi.ErrMalformed):
			// The child gets the raw headers and judges them itself, as it would without plldb.
			a.p.log.Warn("malformed invocation, passing it through", "request_id", inv.RequestID, "err", perr)
		case a.p.sess.handle(ctx, inv):
			if ctx.Err() != nil {
				return
			}
			continue
		}
		copyAnswer(w, resp, bytes.NewReader(event), a.p.log)
		return
	}
}
