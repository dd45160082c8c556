package store_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/cloud/store"
	"github.com/plldb/plldb/testfixtures/moto"
)

// lostAnswer is the SDK's HTTP client with one fault: the first PutItem on table reaches moto, which applies
// it, and its answer is replaced by DynamoDB's 500 InternalServerError ("the request may or may not have
// succeeded"), as when DynamoDB commits a write and the answer is lost. The SDK's standard retryer sends the
// request again, as it does on AWS.
type lostAnswer struct {
	next  aws.HTTPClient
	table string

	mu     sync.Mutex
	writes int // PutItem requests on table that reached moto
	lost   int // answers replaced by a 500
}

func (c *lostAnswer) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != "DynamoDB_20120810.PutItem" || req.Body == nil {
		return c.next.Do(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	if !strings.Contains(string(body), `"TableName":"`+c.table+`"`) {
		return c.next.Do(req)
	}
	resp, err := c.next.Do(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.lost > 0 {
		return resp, nil
	}
	c.lost++
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	msg := `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}`
	return &http.Response{
		Status: "500 Internal Server Error", StatusCode: http.StatusInternalServerError,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(strings.NewReader(msg)),
		ContentLength: int64(len(msg)),
		Request:       req,
	}, nil
}

func (c *lostAnswer) counts() (writes, lost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.lost
}

// TestTicketWriteRetriedAfterALostAnswerIsNotAReplay: the relay records a ticket's id with a conditional
// write; when DynamoDB applied it but its answer was lost, the SDK's retry finds the id already recorded. That
// is the same use of the ticket, not a replay: the developer's connection is allowed (a Deny is API Gateway's
// 403, which the developer side takes as final), and presenting the ticket again is still refused.
func TestTicketWriteRetriedAfterALostAnswerIsNotAReplay(t *testing.T) {
	d := newDynamo(t)
	lossy := &lostAnswer{next: awshttp.NewBuildableClient(), table: d.tables.Tickets}
	client := dynamodb.NewFromConfig(moto.Start(t).Config(), func(o *dynamodb.Options) { o.HTTPClient = lossy })
	s := store.New(client, d.tables)
	ctx := context.Background()
	sess := relay.NewSession("S", "alice", time.Now().Add(time.Hour))
	require.NoError(t, s.PutSession(ctx, sess))

	var logs bytes.Buffer
	h := &relay.Handlers{Store: s, Conns: newFakeConns(), Audience: audience,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	tok, err := ticket.Mint(sess.Keys[wire.RoleDeveloper], ticket.Claims{Session: "S", Role: wire.RoleDeveloper, Peer: "dev", Audience: audience})
	require.NoError(t, err)

	auth, err := h.Authorize(ctx, authRequest(tok))
	require.NoError(t, err)
	writes, lost := lossy.counts()
	require.Equal(t, 1, lost, "the first answer to the ticket's write was lost")
	require.Equal(t, 2, writes, "and the SDK sent the write again")
	assert.Equal(t, "Allow", auth.PolicyDocument.Statement[0].Effect, "relay logs:\n%s", logs.String())
	assert.Equal(t, "S", auth.Context[relay.ContextSession])

	auth, err = h.Authorize(ctx, authRequest(tok))
	require.NoError(t, err)
	assert.Equal(t, "Deny", auth.PolicyDocument.Statement[0].Effect, "the same ticket presented again is a replay")
	assert.Contains(t, logs.String(), ticket.ErrReplayed.Error())
	assert.NotContains(t, logs.String(), tok, "tickets are never logged")

	// The store alone: a write retried after a lost answer is this call's own, a second call is a replay.
	lossy.mu.Lock()
	lossy.lost = 0
	lossy.mu.Unlock()
	exp := time.Now().Add(time.Minute)
	require.NoError(t, s.UseTicket(ctx, "j-lost", exp))
	_, lost = lossy.counts()
	require.Equal(t, 1, lost)
	require.ErrorIs(t, s.UseTicket(ctx, "j-lost", exp), relay.ErrReplayed)
}
