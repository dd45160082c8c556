package aws_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/bridge/wsclient"
	"github.com/plldb/plldb/cloud/instrument"
)

// Someone who can read one instrumented function's configuration gets that function's key only: with it they
// cannot connect as another function of the session, and the invocations they send naming another function
// never run. The relay runs on the DynamoDB store (moto) behind the embedded gateway.
func TestEachFunctionHasItsOwnKey(t *testing.T) {
	f := newFixture(t)
	s, err := awsmode.Attach(context.Background(), f.options())
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = s.Close(context.Background()) })

	orders, users := f.fns["OrdersFunction"].Name, f.fns["UsersFunction"].Name
	ordersEnv := f.h.Settings(t, orders).Environment
	usersEnv := f.h.Settings(t, users).Environment
	require.NotEmpty(t, ordersEnv[instrument.EnvFunctionKey])
	assert.NotEqual(t, ordersEnv[instrument.EnvFunctionKey], usersEnv[instrument.EnvFunctionKey], "each function has its own key")
	key, err := base64.StdEncoding.DecodeString(ordersEnv[instrument.EnvFunctionKey])
	require.NoError(t, err)

	dial := func(fn, peer string) (*wsclient.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return wsclient.Dial(ctx, wsclient.Config{
			URL: f.h.Install.WebSocketURL, Logger: slog.New(slog.DiscardHandler),
			Ticket: func(context.Context) (string, error) {
				return ticket.Mint(key, ticket.Claims{Session: s.ID, Role: wire.RoleFunction, Function: fn, Peer: peer, Audience: f.h.Install.Audience})
			},
		})
	}
	_, err = dial(users, ticket.FunctionPeer(users, "intruder"))
	require.ErrorIs(t, err, wsclient.ErrUnauthorized, "Orders' key cannot connect as Users")

	c, err := dial(orders, ticket.FunctionPeer(orders, "intruder"))
	require.NoError(t, err, "Orders' key connects as Orders")
	defer c.Close()
	inv, err := wire.NewEnvelope(wire.TypeInvoke, "req-as-users", wire.Invoke{RequestID: "req-as-users",
		Function: wire.FunctionIdentity{Name: users, LogicalID: "UsersFunction"}, Deadline: time.Now().Add(time.Minute), Event: []byte(`{}`)})
	require.NoError(t, err)
	require.NoError(t, c.Send(context.Background(), inv))
	select {
	case e := <-c.Recv():
		require.Equal(t, wire.TypeNack, e.T, "an invocation naming Users from Orders' connection is refused")
		var n wire.Nack
		require.NoError(t, e.DecodeBody(&n))
		assert.Equal(t, "req-as-users", n.Ref)
	case <-time.After(20 * time.Second):
		t.Fatal("no nack")
	}

	// The session keeps working for the real functions.
	assert.Equal(t, "local", f.invoke(t, "OrdersFunction")["where"])
	assert.Equal(t, "local", f.invoke(t, "UsersFunction")["where"])
}
