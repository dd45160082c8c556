package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/wsmanage"
)

// Router dispatches the relay Lambda's events: API Gateway invokes the one function both as the $connect
// authorizer and as the integration of every route.
type Router struct {
	Store              relay.Store
	Audience           string
	AWS                aws.Config // region and credentials for the management API
	ManagementEndpoint string     // "" → derived from each event's domain name and stage
	// Restorer, if set, restores the functions of a session that ended when its developer disconnects.
	Restorer relay.Restorer
	// Sweep, if set, is the dead-man sweep the EventBridge schedule runs (instrument.Sweeper.Sweep).
	Sweep  func(ctx context.Context) (instrument.SweepReport, error)
	Logger *slog.Logger // nil → slog.Default()

	mu    sync.Mutex
	conns map[string]*wsmanage.Client // by endpoint; warm invocations reuse them
}

// probe holds the fields that tell the event kinds apart. A REQUEST authorizer event has "type" and
// "methodArn"; WebSocket proxy events have neither, and name their route in requestContext.routeKey; the
// schedule's events come from "aws.events" as a "Scheduled Event".
type probe struct {
	Type           string `json:"type"`
	MethodArn      string `json:"methodArn"`
	Source         string `json:"source"`
	DetailType     string `json:"detail-type"`
	RequestContext struct {
		RouteKey   string `json:"routeKey"`
		DomainName string `json:"domainName"`
		Stage      string `json:"stage"`
	} `json:"requestContext"`
}

// errUnknownEvent is returned for events that are neither an authorizer request nor a WebSocket route.
var errUnknownEvent = errors.New("relay: event is neither a REQUEST authorizer call nor a WebSocket route")

// Handle is the Lambda entry point.
func (r *Router) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var p probe
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("relay: decode event: %w", err)
	}
	if p.Type == "REQUEST" && p.MethodArn != "" {
		var req events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("relay: decode authorizer event: %w", err)
		}
		// Authorize's ErrUnauthorized must reach Lambda unwrapped: API Gateway answers 401 only when the
		// error message is exactly "Unauthorized".
		return r.handlers(p).Authorize(ctx, req)
	}
	if p.Source == "aws.events" && p.DetailType == "Scheduled Event" {
		if r.Sweep == nil {
			return nil, errors.New("relay: a scheduled event, but no sweep is configured (the relay has no DynamoDB store)")
		}
		report, err := r.Sweep(ctx)
		if err != nil {
			return nil, fmt.Errorf("relay: %w", err)
		}
		return report, nil
	}
	if p.RequestContext.RouteKey == "" {
		return nil, errUnknownEvent
	}
	var req events.APIGatewayWebsocketProxyRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("relay: decode %s event: %w", p.RequestContext.RouteKey, err)
	}
	h := r.handlers(p)
	switch p.RequestContext.RouteKey {
	case "$connect":
		return h.Connect(ctx, req)
	case "$disconnect":
		return h.Disconnect(ctx, req)
	default:
		// $default, and any route a selection expression might yield: the relay routes on the envelope.
		return h.Default(ctx, req)
	}
}

func (r *Router) handlers(p probe) *relay.Handlers {
	h := &relay.Handlers{Store: r.Store, Audience: r.Audience, Logger: r.Logger, Restorer: r.Restorer}
	endpoint := r.ManagementEndpoint
	if endpoint == "" && p.RequestContext.DomainName != "" {
		endpoint = wsmanage.EndpointFor(p.RequestContext.DomainName, p.RequestContext.Stage)
	}
	h.Conns = r.connections(endpoint)
	return h
}

func (r *Router) connections(endpoint string) relay.Connections {
	if endpoint == "" {
		return noEndpoint{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns == nil {
		r.conns = map[string]*wsmanage.Client{}
	}
	c, ok := r.conns[endpoint]
	if !ok {
		c = wsmanage.New(endpoint, r.AWS)
		r.conns[endpoint] = c
	}
	return c
}

// noEndpoint serves events that name no domain (authorizer calls need no connections).
type noEndpoint struct{}

var errNoEndpoint = errors.New("no management endpoint: the event names no domain and PLLDB_MANAGEMENT_ENDPOINT is unset")

func (noEndpoint) PostToConnection(context.Context, string, []byte) error { return errNoEndpoint }
func (noEndpoint) DeleteConnection(context.Context, string) error         { return errNoEndpoint }
