package main

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzHandle feeds arbitrary events to the router: whatever API Gateway (or anyone able to invoke the function)
// sends must end in a response or an error, never a panic.
func FuzzHandle(f *testing.F) {
	for _, ev := range []any{
		authorizerEvent(""),
		authorizerEvent("Bearer not-a-ticket"),
		routeEvent("$connect", "c1", map[string]any{"session": "s1", "role": "developer", "peer": "p"}, ""),
		routeEvent("$default", "c1", nil, `{"v":1,"t":"ping","id":"p1"}`),
		routeEvent("$disconnect", "c1", nil, ""),
		routeEvent("sendmessage", "c1", nil, "{}"),
		scheduledEvent(),
	} {
		b, _ := json.Marshal(ev)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"REQUEST"}`))
	f.Add([]byte(`{"requestContext":{"routeKey":5}}`))
	f.Add([]byte(`null`))
	fx := newFixture(f, true)
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := fx.r.Handle(context.Background(), raw)
		if err != nil {
			return
		}
		switch out.(type) {
		case events.APIGatewayProxyResponse, events.APIGatewayCustomAuthorizerResponse:
		default:
			t.Fatalf("unexpected response type %T", out)
		}
	})
}
