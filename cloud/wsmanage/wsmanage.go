// Package wsmanage reaches API Gateway WebSocket connections through the @connections management API
// (POST to send, DELETE to close). It implements relay.Connections for the relay Lambda on top of the SDK's
// apigatewaymanagementapi client, and turns the API's 410 GoneException into relay.ErrGone.
package wsmanage

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/plldb/plldb/bridge/relay"
)

// Client posts to and deletes connections of one WebSocket API stage. Make one with New.
type Client struct {
	// Endpoint is the stage's management URL: https://{api-id}.execute-api.{region}.amazonaws.com/{stage}
	// (https://{domain}/{stage} as the request context's DomainName and Stage give it).
	Endpoint string
	// Region is the region requests are signed for.
	Region string

	api *apigatewaymanagementapi.Client
	// bad is why Endpoint or the config cannot work; New does not fail so that the relay can still answer
	// routes that send nothing, and every send reports it instead.
	bad error
}

var _ relay.Connections = (*Client)(nil)

var errNoCredentials = errors.New("no AWS credentials to sign with")

// New returns a client for the stage at endpoint with cfg's region, credentials, HTTP client and retryer.
func New(endpoint string, cfg aws.Config) *Client {
	c := &Client{Endpoint: endpoint, Region: cfg.Region}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "":
		c.bad = fmt.Errorf("bad management endpoint %q", endpoint)
		return c
	case cfg.Credentials == nil:
		// The SDK would send the request unsigned and API Gateway would refuse it; say why up front.
		c.bad = errNoCredentials
		return c
	}
	// The management API has no regional endpoint of its own: each stage is its own host, so the stage URL
	// is the base endpoint and the operation appends /@connections/{id}.
	base := strings.TrimSuffix(endpoint, "/")
	c.api = apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(base)
	})
	return c
}

// EndpointFor is the management endpoint of the stage a WebSocket event came through.
func EndpointFor(domainName, stage string) string {
	return "https://" + domainName + "/" + stage
}

// PostToConnection sends data to the connection; a connection that no longer exists gives an error wrapping
// relay.ErrGone.
func (c *Client) PostToConnection(ctx context.Context, connectionID string, data []byte) error {
	const what = "post to connection"
	if err := c.usable(what, connectionID); err != nil {
		return err
	}
	if data == nil {
		data = []byte{} // the operation requires a body; an empty message is still a message
	}
	_, err := c.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{
		ConnectionId: aws.String(connectionID),
		Data:         data,
	})
	return wrap(what, connectionID, err)
}

// DeleteConnection closes the connection; one already gone gives an error wrapping relay.ErrGone.
func (c *Client) DeleteConnection(ctx context.Context, connectionID string) error {
	const what = "delete connection"
	if err := c.usable(what, connectionID); err != nil {
		return err
	}
	_, err := c.api.DeleteConnection(ctx, &apigatewaymanagementapi.DeleteConnectionInput{
		ConnectionId: aws.String(connectionID),
	})
	return wrap(what, connectionID, err)
}

func (c *Client) usable(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s: empty connection id", what)
	case c.bad != nil:
		return fmt.Errorf("%s %s: %w", what, id, c.bad)
	case c.api == nil:
		return fmt.Errorf("%s %s: wsmanage.Client not made by New", what, id)
	}
	return nil
}

// wrap names the operation and connection, and adds relay.ErrGone for a 410 so the relay drops the stale
// connection. The status is checked as well as the GoneException type because the SDK only recognises the
// type when the answer names it (header or body), and a bare 410 means the same.
func wrap(what, id string, err error) error {
	if err == nil {
		return nil
	}
	var gone *types.GoneException
	var resp *smithyhttp.ResponseError
	if errors.As(err, &gone) || errors.As(err, &resp) && resp.HTTPStatusCode() == http.StatusGone {
		return fmt.Errorf("%s %s: %w (%w)", what, id, relay.ErrGone, err)
	}
	return fmt.Errorf("%s %s: %w", what, id, err)
}
