package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/plldb/plldb/bridge/relay"
)

// Tables are the relay's DynamoDB tables, as the helper stack names them.
type Tables struct {
	Sessions, Connections, Tickets, Claims string
}

// Env is the relay Lambda's configuration.
type Env struct {
	Audience           string
	Tables             Tables
	ManagementEndpoint string
}

func readEnv(getenv func(string) string) (Env, error) {
	e := Env{
		Audience: getenv("PLLDB_AUDIENCE"),
		Tables: Tables{
			Sessions:    getenv("PLLDB_SESSIONS_TABLE"),
			Connections: getenv("PLLDB_CONNECTIONS_TABLE"),
			Tickets:     getenv("PLLDB_TICKETS_TABLE"),
			Claims:      getenv("PLLDB_CLAIMS_TABLE"),
		},
		ManagementEndpoint: getenv("PLLDB_MANAGEMENT_ENDPOINT"),
	}
	var missing []string
	for _, v := range []struct{ name, val string }{
		{"PLLDB_AUDIENCE", e.Audience},
		{"PLLDB_SESSIONS_TABLE", e.Tables.Sessions},
		{"PLLDB_CONNECTIONS_TABLE", e.Tables.Connections},
		{"PLLDB_TICKETS_TABLE", e.Tables.Tickets},
		{"PLLDB_CLAIMS_TABLE", e.Tables.Claims},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return Env{}, fmt.Errorf("relay environment lacks %v (the helper stack sets them)", missing)
	}
	return e, nil
}

// errNoStore is what openStore returns until the DynamoDB store is wired in.
var errNoStore = errors.New("the DynamoDB relay store (cloud/store) is not wired into the relay Lambda yet")

// openStore opens the relay's session store on DynamoDB.
//
// INTEGRATOR: cloud/store (written in parallel) implements relay.Store on DynamoDB. Once it is merged, replace
// this body with something like
//
//	return store.New(dynamodb.NewFromConfig(cfg), store.Tables{Sessions: t.Sessions, Connections: t.Connections,
//		Tickets: t.Tickets, Claims: t.Claims}), nil
//
// and check that the store's key schema matches the tables in cloud/stack/template.yaml (pk/sk, gsi1, ttl).
var openStore = func(_ context.Context, _ aws.Config, _ Tables) (relay.Store, error) {
	return nil, errNoStore
}
