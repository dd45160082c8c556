package proxy

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"testing"
	"time"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/layer/runtimeapi"
)

// BenchmarkKnockedRoundTrip measures one invocation that goes to the developer through the real relay (embedded
// gateway, relay handlers, WebSocket both ways; the developer acks and answers at once), for a function attached
// normally ("session") and for one attached selectively with a knock in the event ("selective-knocked"). The
// difference is what selective mode adds to a relayed invocation: finding, verifying and removing the knock, and
// the selector's parsing; the link is up before the timer starts in both.
func BenchmarkKnockedRoundTrip(b *testing.B) {
	dev := newDeveloper(b, "")
	for _, mode := range []string{"session", "selective-knocked"} {
		b.Run(mode, func(b *testing.B) {
			rig := startRelayLogged(b, slog.New(slog.DiscardHandler))
			dev.session = rig.session.ID
			env := rig.env("PLLDB_LOG_LEVEL=warn")
			event := httpV2("/orders/42", "POST", map[string]any{"content-type": "application/json"})
			if mode == "selective-knocked" {
				env = append(env, "PLLDB_SELECTIVE=true", "PLLDB_KNOCK_STACK=orders",
					"PLLDB_KNOCK_KEYS="+selenv.FormatKnockKeys(map[string]ed25519.PublicKey{dev.session: dev.pub()}))
				event = httpV2("/orders/42", "POST", map[string]any{"content-type": "application/json",
					"x-plldb-knock": dev.knock(b, knock.Claims{Route: "POST /orders/*"})})
			}
			sb := startSandbox(b, sandboxOpts{handler: "noop.handler", goRuntime: true, env: env})
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				answerAll(rig, stop)
			}()
			defer func() { close(stop); <-done }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			invoke := func() {
				r, err := sb.api.Invoke(ctx, runtimeapi.Invocation{Deadline: time.Now().Add(time.Minute), Event: event})
				if err != nil || r.Error || string(r.Payload) != `{"from":"developer"}` {
					b.Fatalf("invoke: %v %s\n%s", err, r.Payload, sb.stderr)
				}
			}
			// The first invocation waits for the link (session: at start; selective: dialled at the first knock).
			for range 20 {
				invoke()
			}
			b.ResetTimer()
			for b.Loop() {
				invoke()
			}
		})
	}
}

// answerAll plays a developer who acks and answers every invocation at once, until stop.
func answerAll(rig *relayRig, stop <-chan struct{}) {
	ctx := context.Background()
	for {
		select {
		case <-stop:
			return
		case e, ok := <-rig.dev.Recv():
			if !ok {
				return
			}
			if e.T != wire.TypeInvoke {
				continue
			}
			for _, m := range []struct {
				t    wire.Type
				body any
			}{{wire.TypeAck, wire.Ack{RequestID: e.ID}}, {wire.TypeResult, wire.Result{RequestID: e.ID, Payload: []byte(`{"from":"developer"}`)}}} {
				out, err := wire.NewEnvelope(m.t, e.ID, m.body)
				if err != nil {
					return
				}
				out.To = e.From
				if rig.dev.Send(ctx, out) != nil {
					return
				}
			}
		}
	}
}
