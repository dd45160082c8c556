package local

import (
	"context"
	"math/rand/v2"

	"github.com/plldb/plldb/bridge/gateway"
	"github.com/plldb/plldb/bridge/wire"
)

// Hooks for the soak and the tests that reproduce what it found: they reach parts of the pipeline that the
// Invoke API does not expose, to break them the way a crash or API Gateway would.

// SetDeveloperURL makes the developer link dial rewrite(gateway URL) instead of the gateway itself.
func SetDeveloperURL(o *Options, rewrite func(string) string) { o.developerURL = rewrite }

// WrapRoutes wraps the relay handlers the embedded gateway runs.
func WrapRoutes(o *Options, wrap func(gateway.Routes) gateway.Routes) { o.wrapRoutes = wrap }

// Gateway is the pipeline's embedded gateway.
func Gateway(p *Pipeline) *gateway.Gateway { return p.gw }

// SessionConnections lists the gateway connection ids the relay knows for role (developer or function).
func SessionConnections(p *Pipeline, role wire.Role) []string {
	conns, _ := p.store.SessionConnections(context.Background(), p.session.ID, role)
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.ID
	}
	return ids
}

// KillSandbox stops the layer proxy of one live sandbox of fn (idle or serving an invocation), picked at random,
// without waiting for it: the emulated sandbox dies as a crashed runtime's would. It reports whether there was
// one to kill and whether it was busy.
func KillSandbox(p *Pipeline, fn string) (killed, busy bool) {
	sf, ok := p.byName[fn]
	if !ok {
		return false, false
	}
	sf.mu.Lock()
	var all []*sandbox
	for sb := range sf.live {
		all = append(all, sb)
	}
	idle := map[*sandbox]bool{}
	for _, sb := range sf.idle {
		idle[sb] = true
	}
	sf.mu.Unlock()
	if len(all) == 0 {
		return false, false
	}
	sb := all[rand.IntN(len(all))]
	sb.cancel()
	return true, !idle[sb]
}
