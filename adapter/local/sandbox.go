package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
	"github.com/plldb/plldb/layer/proxy"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// sandbox is one emulated Lambda execution environment: an in-process Runtime API with the real layer proxy
// polling it. Like a real sandbox it serves one invocation at a time; the pool keeps as many as there are
// concurrent invocations.
type sandbox struct {
	api    *runtimeapi.Server
	out    *syncBuffer // the sandbox's stdout: what the proxy echoes of the function's logs
	cancel context.CancelFunc
	done   chan struct{} // closed when the proxy has stopped
}

// acquire gives an invocation of sf a sandbox, reusing an idle one when there is one, as Lambda reuses warm
// execution environments. The caller holds one of sf's concurrency slots (takeSlot), so there are never more
// sandboxes busy than the function's concurrency.
func (p *Pipeline) acquire(ctx context.Context, sf *servedFunction) (*sandbox, error) {
	sf.mu.Lock()
	for len(sf.idle) > 0 {
		sb := sf.idle[len(sf.idle)-1]
		sf.idle = sf.idle[:len(sf.idle)-1]
		select {
		case <-sb.done: // its proxy stopped (the link failed for good): drop it
			continue
		default:
		}
		sf.mu.Unlock()
		return sb, nil
	}
	sf.mu.Unlock()
	return p.newSandbox(ctx, sf)
}

func (p *Pipeline) release(sf *servedFunction, sb *sandbox, healthy bool) {
	sf.mu.Lock()
	if healthy && p.ctx.Err() == nil {
		sf.idle = append(sf.idle, sb)
		sf.mu.Unlock()
		return
	}
	sf.mu.Unlock()
	sb.stop()
}

// localAckTimeout is how long an emulated sandbox waits for the developer side to take an invocation.
const localAckTimeout = 15 * time.Second

func (p *Pipeline) newSandbox(ctx context.Context, sf *servedFunction) (*sandbox, error) {
	api := runtimeapi.NewServer(runtimeapi.ServerOptions{Logger: p.log.With("component", "runtime-api")})
	if err := api.Start(p.ctx); err != nil {
		return nil, fmt.Errorf("start emulated Runtime API for %s: %w", sf.LogicalID, err)
	}
	sctx, cancel := context.WithCancel(p.ctx)
	sb := &sandbox{api: api, out: &syncBuffer{}, cancel: cancel, done: make(chan struct{})}
	peer := ticket.FunctionPeer(sf.Name, "sandbox-"+randomID(4))
	identity := p.identity(sf)
	linked := make(chan error, 1)
	cfg := proxy.Config{
		RuntimeAPI: api.Addr(),
		Logger:     p.log.With("component", "proxy", "function", sf.LogicalID),
		Stdout:     sb.out,
		Session: &proxy.SessionConfig{
			Function: identity,
			// No original runtime runs beside the emulated sandbox, so there is nothing to fall back to: an
			// invocation the developer side cannot take gets a clear error instead.
			Strict: true,
			// The Lambda default (3 s) is how long a sandbox waits before it falls back to the deployed code. Here
			// there is none, and the developer side runs in this process: it is late only when the machine is
			// saturated (dozens of sandboxes cold-starting at once on a laptop), and then waiting beats failing
			// the invocation with Plldb.NoDeveloper. The function's own deadline still bounds the wait.
			AckTimeout: localAckTimeout,
			Env:        sf.Env,
			Dial: func(ctx context.Context) (proxy.Link, error) {
				c, err := wsclient.Dial(ctx, wsclient.Config{
					URL:       p.gw.URL(),
					Ticket:    p.ticketer(wire.RoleFunction, sf.Name, peer),
					OnConnect: hello(wire.Hello{Role: wire.RoleFunction, Peer: peer, Agent: "plldb-local-sandbox", Function: &identity}),
					Logger:    p.log.With("link", "sandbox", "function", sf.LogicalID), // wsclient adds component=wsclient
				})
				select {
				case linked <- err:
				default:
				}
				if err != nil {
					return nil, err
				}
				return c, nil
			},
		},
	}
	sf.mu.Lock()
	sf.live[sb] = struct{}{}
	sf.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(sb.done)
		defer func() {
			sf.mu.Lock()
			delete(sf.live, sb)
			sf.mu.Unlock()
		}()
		defer api.Close()
		if _, err := proxy.Run(sctx, cfg); err != nil && sctx.Err() == nil {
			p.log.Warn("sandbox proxy stopped", "function", sf.LogicalID, "err", err)
		}
	}()
	select {
	case err := <-linked:
		if err != nil {
			sb.stop()
			return nil, fmt.Errorf("connect sandbox of %s to the gateway: %w", sf.LogicalID, err)
		}
	case <-sb.done:
		return nil, fmt.Errorf("sandbox of %s stopped while starting", sf.LogicalID)
	case <-ctx.Done():
		sb.stop()
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		sb.stop()
		return nil, fmt.Errorf("sandbox of %s did not connect to the gateway within 10s", sf.LogicalID)
	}
	return sb, nil
}

func (sb *sandbox) stop() {
	sb.cancel()
	<-sb.done
}

func runtimeInvocation(id string, deadline time.Time, arn string, req InvokeRequest) runtimeapi.Invocation {
	trace := req.TraceID
	if trace == "" {
		trace = "Root=1-" + fmt.Sprintf("%08x", time.Now().Unix()) + "-" + randomID(12) + ";Sampled=0"
	}
	return runtimeapi.Invocation{
		RequestID:     id,
		Deadline:      deadline,
		FunctionARN:   arn,
		TraceID:       trace,
		ClientContext: decodeClientContext(req.ClientContext),
		TenantID:      req.TenantID,
		Event:         req.Payload,
	}
}

// syncBuffer is a bytes.Buffer safe for the proxy's writer goroutine and the invoker's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// decodeClientContext turns the Invoke API's base64 X-Amz-Client-Context into the JSON the Runtime API's
// Lambda-Runtime-Client-Context header carries. The Invoke API already refused invalid base64.
func decodeClientContext(b64 string) string {
	if b64 == "" {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return ""
	}
	return string(raw)
}
