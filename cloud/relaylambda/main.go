// Command relaylambda is the relay Lambda of the helper stack (provided.al2023, arm64, built as "bootstrap" by
// cloud/stack.BuildRelayZip). One function serves every route of the WebSocket API: the $connect REQUEST
// authorizer, $connect, $disconnect and $default, all handed to bridge/relay.Handlers, with the session store
// on DynamoDB and connections reached through the @connections management API. An EventBridge schedule invokes
// it too, every 5 minutes, for the dead-man sweep (instrument.Sweeper): the functions of sessions that expired,
// or whose developer has been silent past the grace period, are put back with nobody's plldb left running.
//
// Environment (set by the helper stack's template):
//
//	PLLDB_AUDIENCE               the audience relay tickets must carry (required)
//	PLLDB_SESSIONS_TABLE, PLLDB_CONNECTIONS_TABLE, PLLDB_TICKETS_TABLE, PLLDB_CLAIMS_TABLE
//	                             the DynamoDB tables (required)
//	PLLDB_MANAGEMENT_ENDPOINT    optional: the @connections endpoint; by default it is derived from each
//	                             event's domain name and stage
//	PLLDB_DEADMAN_GRACE          optional: how long a developer may be silent before the sweep restores its
//	                             session's functions (a Go duration, at least 10m; default 20m)
package main

import (
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"

	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(log)
	r, err := setup(context.Background(), os.Getenv, log)
	if err != nil {
		// Failing the init phase makes Lambda report the reason on every invocation, in the function's logs.
		log.Error("relay init failed", "err", err.Error())
		os.Exit(1)
	}
	lambda.Start(r.Handle)
}

// setup builds the router from the function's environment.
func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*Router, error) {
	env, err := readEnv(getenv)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	st, err := openStore(ctx, cfg, env.Tables)
	if err != nil {
		return nil, fmt.Errorf("open relay store: %w", err)
	}
	r := &Router{Store: st, Audience: env.Audience, AWS: cfg, ManagementEndpoint: env.ManagementEndpoint, Logger: log}
	if ds, ok := st.(*store.Store); ok {
		// The expiry path: a session that ended without a detach has its functions put back by the relay.
		r.Restorer = instrument.NewRestorer(cfg, ds, log)
		r.Sweep = (&instrument.Sweeper{Store: ds, Restorer: r.Restorer, Grace: env.Grace, Logger: log}).Sweep
	}
	return r, nil
}
