package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/instrument"
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
	// Grace is how long a session's developer may be silent before the scheduled sweep restores its functions.
	Grace time.Duration
}

// minGrace keeps the sweep from ending sessions whose developer is only between heartbeats (every 4 minutes).
const minGrace = 10 * time.Minute

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
	e.Grace = instrument.DefaultGrace
	if g := getenv("PLLDB_DEADMAN_GRACE"); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d < minGrace {
			return Env{}, fmt.Errorf("relay environment: PLLDB_DEADMAN_GRACE %q is not a duration of at least %s", g, minGrace)
		}
		e.Grace = d
	}
	return e, nil
}

// openStore opens the relay's session store on DynamoDB (a variable so tests can substitute one).
var openStore = func(_ context.Context, cfg aws.Config, t Tables) (relay.Store, error) {
	return store.New(dynamodb.NewFromConfig(cfg), store.Tables{
		Sessions: t.Sessions, Connections: t.Connections, Tickets: t.Tickets, Claims: t.Claims,
	}), nil
}
