package local

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
)

// Selective mirror mode (Options.Mirror, docs/knock.md "Mirror mode"), offline: a knocked invocation is answered
// to its caller by the plain executor, "the deployed code", exactly as an unknocked one, and a copy of it (the
// knock already stripped) goes to the debug executor as the layer sends one in the cloud: a `invoke` with Mirror
// set, then a `deployed` envelope with what the plain executor answered, both over the embedded relay on a
// function connection of the pipeline's own. The developer side runs the copy without acking it and reports both
// results (devside.Hooks.OnMirror); a breakpoint in the copy holds nobody.
//
// The copy does not go through an emulated sandbox: in the cloud the layer proxy is the one that sends copies,
// and here the pipeline stands in for it, so the developer side's half (the part plldb local exists to run) is the
// real one. Each function has one mirror link, dialled at its first knocked invocation.

// mirrorLinks are the pipeline's function connections that carry copies, by function name.
type mirrorLinks struct {
	mu    sync.Mutex
	links map[string]*wsclient.Client
}

// mirrorLink returns sf's mirror link, dialling it the first time.
func (p *Pipeline) mirrorLink(sf *servedFunction) (*wsclient.Client, error) {
	p.mirrors.mu.Lock()
	defer p.mirrors.mu.Unlock()
	if c, ok := p.mirrors.links[sf.Name]; ok {
		select {
		case <-c.Done(): // gave up for good: dial again
		default:
			return c, nil
		}
	}
	peer := ticket.FunctionPeer(sf.Name, "mirror-"+randomID(4))
	identity := p.identity(sf)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	c, err := wsclient.Dial(ctx, wsclient.Config{
		URL:       p.gw.URL(),
		Ticket:    p.ticketer(wire.RoleFunction, sf.Name, peer),
		OnConnect: hello(wire.Hello{Role: wire.RoleFunction, Peer: peer, Agent: "plldb-local-mirror", Function: &identity}),
		Logger:    p.log.With("link", "mirror", "function", sf.LogicalID), // wsclient adds component=wsclient
	})
	if err != nil {
		return nil, fmt.Errorf("connect the mirror link of %s: %w", sf.LogicalID, err)
	}
	if p.mirrors.links == nil {
		p.mirrors.links = map[string]*wsclient.Client{}
	}
	p.mirrors.links[sf.Name] = c
	// Nothing is expected back for a copy; the relay's nacks (no developer connected) are read and dropped so the
	// link's receive queue never fills.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case env, ok := <-c.Recv():
				if !ok {
					return
				}
				p.log.Debug("mirror link message", "function", sf.LogicalID, "type", env.T, "id", env.ID)
			case <-c.Done():
				return
			case <-p.ctx.Done():
				return
			}
		}
	}()
	return c, nil
}

// closeMirrorLinks closes every mirror link; Close calls it once the pipeline's goroutines have stopped.
func (p *Pipeline) closeMirrorLinks() {
	p.mirrors.mu.Lock()
	links := p.mirrors.links
	p.mirrors.links = nil
	p.mirrors.mu.Unlock()
	for _, c := range links {
		_ = c.Close()
	}
}

func (p *Pipeline) identity(sf *servedFunction) wire.FunctionIdentity {
	return wire.FunctionIdentity{
		LogicalID: sf.LogicalID,
		Name:      sf.Name,
		ARN:       p.arn(sf),
		Version:   "$LATEST",
		MemoryMB:  sf.MemoryMB,
		Region:    p.opts.Region,
		Runtime:   sf.Runtime,
		Handler:   sf.Handler,
	}
}

// runMirrored answers a knocked invocation with the plain executor and sends its copy and the plain answer to
// the developer side. The caller waits for the plain executor only.
func (p *Pipeline) runMirrored(ctx context.Context, sf *servedFunction, id string, req InvokeRequest) (InvokeResponse, error) {
	start := time.Now()
	invoked := p.invokedARN(sf, req.Qualifier)
	inv := wire.Invoke{
		RequestID:     id,
		Function:      p.identity(sf),
		Deadline:      start.Add(sf.timeout),
		TraceID:       req.TraceID,
		ClientContext: decodeClientContext(req.ClientContext),
		TenantID:      req.TenantID,
		Event:         req.Payload,
		Mirror:        true,
	}
	inv.Function.ARN = invoked
	answered := make(chan *wire.Deployed, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.sendCopy(sf, &inv, answered)
	}()
	resp, err := p.runPlain(ctx, sf, id, req)
	if err != nil {
		answered <- nil
		return resp, err
	}
	answered <- deployedAnswer(resp, time.Since(start))
	return resp, nil
}

// sendCopy sends the copy, then the deployed answer once there is one. A copy that cannot be sent is logged
// and dropped: the caller has its answer either way.
func (p *Pipeline) sendCopy(sf *servedFunction, inv *wire.Invoke, answered <-chan *wire.Deployed) {
	log := p.log.With("function", sf.LogicalID, "request", inv.RequestID)
	link, err := p.mirrorLink(sf)
	if err != nil {
		log.Warn("mirror mode: the copy of a knocked invocation cannot reach the debugger", "err", err)
		return
	}
	env, err := wire.NewEnvelope(wire.TypeInvoke, inv.RequestID, inv)
	if err != nil {
		log.Error("mirror mode: encode the copy", "err", err)
		return
	}
	sendCtx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	err = link.Send(sendCtx, env)
	cancel()
	if err != nil {
		log.Warn("mirror mode: send the copy", "err", err)
		return
	}
	var d *wire.Deployed
	select {
	case d = <-answered:
	case <-p.ctx.Done():
		return
	}
	if d == nil {
		return
	}
	env, err = wire.NewEnvelope(wire.TypeDeployed, inv.RequestID, d)
	if err != nil {
		log.Error("mirror mode: encode the deployed answer", "err", err)
		return
	}
	sendCtx, cancel = context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := link.Send(sendCtx, env); err != nil {
		log.Warn("mirror mode: send the deployed answer", "err", err)
	}
}

// deployedAnswer is what the plain executor answered, as the layer reports what the deployed runtime posted.
func deployedAnswer(resp InvokeResponse, took time.Duration) *wire.Deployed {
	d := &wire.Deployed{RequestID: resp.RequestID, Payload: resp.Payload, ContentType: resp.ContentType, DurationMs: took.Milliseconds()}
	if resp.FunctionError != "" {
		var doc struct {
			ErrorType string `json:"errorType"`
		}
		_ = json.Unmarshal(resp.Payload, &doc)
		d.Error, d.ErrorType, d.ContentType = true, doc.ErrorType, "application/json"
	}
	return d
}
