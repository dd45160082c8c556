package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/store"
)

func TestDefaultTables(t *testing.T) {
	assert.Equal(t, store.Tables{
		Sessions: "plldb-sessions", Connections: "plldb-connections", Tickets: "plldb-tickets", Claims: "plldb-claims",
	}, store.DefaultTables("plldb"))
	assert.Equal(t, "team-b-claims", store.DefaultTables("team-b").Claims)
}

func TestCreateTables(t *testing.T) {
	d := newDynamo(t) // creates them once
	ctx := context.Background()
	require.NoError(t, store.CreateTables(ctx, d.client, d.tables), "creating again is a no-op")

	ttl := map[string]bool{}
	for _, name := range store.TTLTables(d.tables) {
		ttl[name] = true
	}
	assert.Len(t, ttl, 3)
	assert.False(t, ttl[d.tables.Claims], "claims hold the only copy of a configuration: they never expire")
	for _, in := range store.CreateTableInputs(d.tables) {
		desc, err := d.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
		require.NoError(t, err)
		assert.Equal(t, types.TableStatusActive, desc.Table.TableStatus)
		assert.ElementsMatch(t, in.KeySchema, desc.Table.KeySchema, *in.TableName)
		assert.Len(t, desc.Table.GlobalSecondaryIndexes, len(in.GlobalSecondaryIndexes), *in.TableName)
		tl, err := d.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: in.TableName})
		require.NoError(t, err)
		if ttl[*in.TableName] {
			assert.Equal(t, types.TimeToLiveStatusEnabled, tl.TimeToLiveDescription.TimeToLiveStatus, *in.TableName)
			assert.Equal(t, store.TTLAttribute, aws.ToString(tl.TimeToLiveDescription.AttributeName))
		} else {
			assert.NotEqual(t, types.TimeToLiveStatusEnabled, tl.TimeToLiveDescription.TimeToLiveStatus, *in.TableName)
		}
	}
	claims := store.CreateTableInputs(d.tables)[3]
	require.Len(t, claims.GlobalSecondaryIndexes, 1)
	assert.Equal(t, store.SessionIndex, *claims.GlobalSecondaryIndexes[0].IndexName)

	err := store.CreateTables(ctx, d.client, store.Tables{Sessions: "x"})
	require.ErrorContains(t, err, "every table needs a name")
}

// TestTTLAttributes checks the values DynamoDB TTL will act on: never before the store itself would stop
// honouring an item.
func TestTTLAttributes(t *testing.T) {
	d := newDynamo(t)
	clk := newClock()
	s := d.store(clk.Now)
	ctx := context.Background()
	exp := clk.Now().Add(time.Hour + 500*time.Millisecond)
	require.NoError(t, s.PutSession(ctx, relay.NewSession("S", "alice", exp)))
	require.NoError(t, s.PutSession(ctx, relay.NewSession("forever", "alice", time.Time{})))
	require.NoError(t, s.UseTicket(ctx, "j", exp))
	require.NoError(t, s.PutConnection(ctx, relay.Connection{ID: "c", Session: "S", Role: wire.RoleFunction, Peer: "p", ConnectedAt: clk.Now()}))

	ttlOf := func(table string, key map[string]types.AttributeValue) (int64, bool) {
		out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key})
		require.NoError(t, err)
		require.NotEmpty(t, out.Item)
		n, ok := out.Item[store.TTLAttribute].(*types.AttributeValueMemberN)
		if !ok {
			return 0, false
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		require.NoError(t, err)
		return v, true
	}
	s3 := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	v, ok := ttlOf(d.tables.Sessions, map[string]types.AttributeValue{"id": s3("S")})
	require.True(t, ok)
	assert.Equal(t, exp.Unix()+1, v, "rounded up to the next second")
	_, ok = ttlOf(d.tables.Sessions, map[string]types.AttributeValue{"id": s3("forever")})
	assert.False(t, ok, "a session without expiry has no TTL")
	v, ok = ttlOf(d.tables.Tickets, map[string]types.AttributeValue{"jti": s3("j")})
	require.True(t, ok)
	assert.Equal(t, exp.Unix()+1, v)
	v, ok = ttlOf(d.tables.Connections, map[string]types.AttributeValue{"pk": s3("c#c"), "sk": s3("c")})
	require.True(t, ok)
	assert.Equal(t, clk.Now().Add(store.ConnectionRetention).Unix(), v, "past API Gateway's 2 h connection limit")
}

// TestStoreFailuresAreNotAnswers: when DynamoDB fails, lookups return an error that is neither "not found" nor
// "replayed", so the relay answers 500 instead of denying or dropping.
func TestStoreFailuresAreNotAnswers(t *testing.T) {
	d := newDynamo(t)
	s := store.New(d.client, store.DefaultTables("no-such-install"))
	ctx := context.Background()
	_, err := s.GetSession(ctx, "S")
	require.Error(t, err)
	assert.NotErrorIs(t, err, relay.ErrNotFound)
	assert.Contains(t, err.Error(), "get session")
	err = s.UseTicket(ctx, "j", time.Now().Add(time.Minute))
	require.Error(t, err)
	assert.NotErrorIs(t, err, relay.ErrReplayed)
	_, err = s.GetConnection(ctx, "c")
	require.Error(t, err)
	assert.NotErrorIs(t, err, relay.ErrNotFound)
	_, err = s.PeerConnection(ctx, "S", "p")
	require.Error(t, err)
	assert.NotErrorIs(t, err, relay.ErrNotFound)
	_, err = s.SessionConnections(ctx, "S", "")
	require.Error(t, err)
	require.Error(t, s.PutConnection(ctx, relay.Connection{ID: "c", Session: "S"}))
	require.Error(t, s.DeleteConnection(ctx, "c"))
	_, _, err = s.GetSnapshot(ctx, "arn")
	require.Error(t, err)
	_, err = s.StackSnapshots(ctx, []string{"arn"})
	require.Error(t, err)
	_, err = s.SessionSnapshots(ctx, "S")
	require.Error(t, err)
	require.Error(t, s.Release(ctx, "arn", "S"))
	require.Error(t, s.UseTicket(ctx, "", time.Now()), "an empty ticket id is refused")
	require.ErrorContains(t, s.PutSession(ctx, relay.Session{}), "id is required")
}

// TestCorruptItems: items written by something else (an older plldb, a hand edit) give an error naming the
// attribute, never a panic or a wrong answer.
func TestCorruptItems(t *testing.T) {
	d := newDynamo(t)
	s := d.store(nil)
	ctx := context.Background()
	put := func(table string, it map[string]types.AttributeValue) {
		_, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it})
		require.NoError(t, err)
	}
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	num := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

	put(d.tables.Sessions, map[string]types.AttributeValue{"id": str("bad-keys"), "keys": str("not a map")})
	_, err := s.GetSession(ctx, "bad-keys")
	require.ErrorContains(t, err, "keys")
	assert.NotErrorIs(t, err, relay.ErrNotFound)
	put(d.tables.Sessions, map[string]types.AttributeValue{"id": str("bad-key"), "keys": &types.AttributeValueMemberM{
		Value: map[string]types.AttributeValue{"developer": str("text")}}})
	_, err = s.GetSession(ctx, "bad-key")
	require.ErrorContains(t, err, "developer")
	put(d.tables.Sessions, map[string]types.AttributeValue{"id": str("bad-exp"), "expires": str("soon")})
	_, err = s.GetSession(ctx, "bad-exp")
	require.ErrorContains(t, err, "expires")

	put(d.tables.Connections, map[string]types.AttributeValue{"pk": str("c#bad"), "sk": str("c"), "connected_at": str("yesterday")})
	_, err = s.GetConnection(ctx, "bad")
	require.ErrorContains(t, err, "connected_at")

	for name, it := range map[string]map[string]types.AttributeValue{
		"env":     {"env": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"A": num("1")}}},
		"layers":  {"layers": &types.AttributeValueMemberL{Value: []types.AttributeValue{num("1")}}},
		"timeout": {"timeout": num("99999999999")},
		"config":  {"config": str("{}")},
		"has_env": {"has_env": str("yes")},
		"owner":   {"owner": num("3")},
	} {
		it["arn"] = str("arn:" + name)
		put(d.tables.Claims, it)
		_, _, err := s.GetSnapshot(ctx, "arn:"+name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "arn:"+name, "names the claim")
	}
}
