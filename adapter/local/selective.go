package local

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/carrier"
)

// Selective mode, the offline twin of `plldb attach --selective` (docs/knock.md): a function runs as two
// executors. Invocations with a valid knock of this pipeline's session take the usual path (emulated sandbox,
// layer proxy, relay, developer side) to the executor under debugpy, where breakpoints stop; everything else is
// "the deployed code" and runs on a second executor without debugpy, called directly where the invocation enters
// the pipeline: no emulated sandbox, no relay hop, no debugger slowing it down. The check is carrier.Check with
// the session's public key, the code the layer runs in the cloud, so a knock that works here works there.

// startSelective creates the knock session and starts the plain executors, one per function.
func (p *Pipeline) startSelective(ctx context.Context, fns []template.Function) error {
	if !p.opts.Selective {
		return nil
	}
	s, err := knockkey.New(knockkey.LocalAudience)
	if err != nil {
		return err
	}
	p.knocks = s
	plain, err := devside.Start(ctx, devside.Config{
		Functions:            fns,
		TemplateDir:          filepath.Dir(p.tpl.Path),
		Python:               p.opts.Python,
		Region:               p.opts.Region,
		Env:                  p.opts.Env,
		MaxConcurrency:       p.opts.MaxConcurrency,
		Concurrency:          Concurrencies(fns, p.opts),
		IdleTimeout:          p.opts.IdleTimeout,
		DeveloperCredentials: p.opts.Credentials,
		// No sandbox hooks: nothing attaches a debugger to these sandboxes.
		Hooks:  devside.Hooks{OnLog: p.plainLog},
		Logger: p.log.With("executor", "plain"),
	})
	if err != nil {
		return fmt.Errorf("selective mode: %w", err)
	}
	p.plainDev = plain
	for _, sf := range p.fns {
		d, ok := plain.Lookup(sf.LogicalID)
		if !ok {
			return fmt.Errorf("selective mode: no plain executor for %s", sf.LogicalID)
		}
		v, err := s.Verifier(sf.LogicalID, sf.Name)
		if err != nil {
			return fmt.Errorf("selective mode: %s: %w", sf.LogicalID, err)
		}
		sf.plain, sf.verifier = d.Exec, v
	}
	return nil
}

// saveKnockSession writes the session file `plldb knock --local` reads, once the Invoke API's address is known.
func (p *Pipeline) saveKnockSession() error {
	if p.knocks == nil {
		return nil
	}
	p.knocks.Endpoint = p.Endpoint()
	p.knocks.Functions = nil
	for _, sf := range p.fns {
		p.knocks.Functions = append(p.knocks.Functions, knockkey.Function{LogicalID: sf.LogicalID, Name: sf.Name})
	}
	if err := p.knocks.Save(); err != nil {
		return fmt.Errorf("selective mode: %w", err)
	}
	return nil
}

// Mirrored reports whether knocked invocations are mirrored (Options.Mirror) rather than held by the debugger.
func (p *Pipeline) Mirrored() bool { return p.knocks != nil && p.opts.Mirror }

// KnockSession is the session whose knocks mark invocations for the debugger; nil unless Selective.
func (p *Pipeline) KnockSession() *knockkey.Session { return p.knocks }

// PlainExecutor returns the executor without debugpy that runs a function's unknocked invocations in selective
// mode (by logical id or name).
func (p *Pipeline) PlainExecutor(name string) (*executor.Executor, bool) {
	sf, ok := p.byName[name]
	if !ok || sf.plain == nil {
		return nil, false
	}
	return sf.plain, true
}

// route checks req's knock and returns req without it, and whether it goes to the debugger. A knock that does
// not verify is logged with the reason only: the token is a bearer credential and never printed.
func (p *Pipeline) route(sf *servedFunction, req InvokeRequest) (InvokeRequest, bool) {
	cc := decodeClientContext(req.ClientContext)
	o := carrier.Check(sf.verifier, req.Payload, cc)
	if o.Found == 0 && o.Err == nil {
		return req, false
	}
	req.Payload = o.Event
	if o.ClientContext != cc {
		req.ClientContext = base64.StdEncoding.EncodeToString([]byte(o.ClientContext))
	}
	if !o.Knocked {
		p.log.Warn("knock refused; the invocation runs without the debugger", "function", sf.LogicalID, "reason", o.Err)
	}
	return req, o.Knocked
}

// runPlain runs an unknocked invocation on sf's plain executor and answers it as the Invoke API would, with the
// same START/END/REPORT log lines.
func (p *Pipeline) runPlain(ctx context.Context, sf *servedFunction, id string, req InvokeRequest) (InvokeResponse, error) {
	invoked := p.invokedARN(sf, req.Qualifier)
	logs := &syncBuffer{}
	start := time.Now()
	fmt.Fprintf(logs, "START RequestId: %s Version: $LATEST\n", id)
	p.plainLogs.Store(id, logs)
	var inv *wire.Invoke
	if obs := p.opts.PlainObserver; obs != nil {
		inv = &wire.Invoke{RequestID: id, Function: wire.FunctionIdentity{LogicalID: sf.LogicalID, Name: sf.Name, ARN: invoked, Runtime: sf.Runtime, Handler: sf.Handler}}
		obs.Started(inv)
	}
	out, err := sf.plain.Invoke(ctx, executor.Invocation{
		RequestID:     id,
		Event:         req.Payload,
		Deadline:      start.Add(sf.timeout),
		InvokedARN:    invoked,
		TraceID:       req.TraceID,
		ClientContext: req.ClientContext,
		TenantID:      req.TenantID,
		Credentials:   p.plainDev.Credentials(ctx),
	})
	p.plainLogs.Delete(id)
	if inv != nil {
		p.opts.PlainObserver.Finished(inv, out, err)
	}
	if err != nil {
		return InvokeResponse{}, fmt.Errorf("invoke %s: %w", sf.LogicalID, err)
	}
	writeEnd(logs, id, time.Since(start), sf.MemoryMB, req.Tail, reportFacts{init: out.InitDuration, pid: out.PID})
	resp := InvokeResponse{RequestID: id, Payload: out.Payload, Log: logs.Bytes(), ContentType: out.ContentType}
	if out.Err != nil {
		resp.FunctionError = "Unhandled"
		resp.ContentType = ""
		resp.Payload = out.Err.Document
		if resp.Payload == nil {
			resp.Payload, _ = json.Marshal(out.Err)
		}
	}
	return resp, nil
}

// plainLog files a plain executor's output line under its invocation (for the log tail) and passes it on.
func (p *Pipeline) plainLog(line executor.LogLine) {
	if v, ok := p.plainLogs.Load(line.RequestID); ok && line.RequestID != "" {
		b := v.(*syncBuffer)
		if line.Frame != 0 {
			_, _ = b.Write([]byte(line.Text[:line.Lead] + line.Record))
			if n := len(line.Record); n == 0 || line.Record[n-1] != '\n' {
				_, _ = b.Write([]byte{'\n'})
			}
		} else {
			_, _ = b.Write([]byte(line.Text))
		}
	}
	if p.opts.OnLog != nil {
		p.opts.OnLog(line)
	}
}
