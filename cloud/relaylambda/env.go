package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/store"
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

// openStore opens the relay's session store on DynamoDB (a variable so tests can substitute one).
var openStore = func(_ context.Context, cfg aws.Config, t Tables) (relay.Store, error) {
	return store.New(dynamodb.NewFromConfig(cfg), store.Tables{
		Sessions: t.Sessions, Connections: t.Connections, Tickets: t.Tickets, Claims: t.Claims,
	}), nil
}
