// Package wsmanage reaches API Gateway WebSocket connections through the @connections management API
// (POST to send, DELETE to close), signed with SigV4. It implements relay.Connections for the relay Lambda.
//
// It talks HTTP itself rather than through the SDK's apigatewaymanagementapi client, which is not available
// from this project's module proxy; the API is two signed requests.
package wsmanage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/plldb/plldb/bridge/relay"
)

// Client posts to and deletes connections of one WebSocket API stage.
type Client struct {
	// Endpoint is the stage's management URL: https://{api-id}.execute-api.{region}.amazonaws.com/{stage}
	// (https://{domain}/{stage} as the request context's DomainName and Stage give it).
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	HTTP        aws.HTTPClient // nil: http.DefaultClient
	Now         func() time.Time
}

var _ relay.Connections = (*Client)(nil)

// New returns a client for the stage at endpoint with cfg's region and credentials.
func New(endpoint string, cfg aws.Config) *Client {
	return &Client{Endpoint: endpoint, Region: cfg.Region, Credentials: cfg.Credentials, HTTP: cfg.HTTPClient}
}

// EndpointFor is the management endpoint of the stage a WebSocket event came through.
func EndpointFor(domainName, stage string) string {
	return "https://" + domainName + "/" + stage
}

// PostToConnection sends data to the connection; a connection that no longer exists gives an error wrapping
// relay.ErrGone.
func (c *Client) PostToConnection(ctx context.Context, connectionID string, data []byte) error {
	return c.do(ctx, http.MethodPost, connectionID, data)
}

// DeleteConnection closes the connection; one already gone gives an error wrapping relay.ErrGone.
func (c *Client) DeleteConnection(ctx context.Context, connectionID string) error {
	return c.do(ctx, http.MethodDelete, connectionID, nil)
}

func (c *Client) do(ctx context.Context, method, id string, body []byte) error {
	what := "post to connection"
	if method == http.MethodDelete {
		what = "delete connection"
	}
	if id == "" {
		return fmt.Errorf("%s: empty connection id", what)
	}
	base, err := url.Parse(strings.TrimSuffix(c.Endpoint, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return fmt.Errorf("%s %s: bad management endpoint %q", what, id, c.Endpoint)
	}
	u := *base
	u.Path = base.Path + "/@connections/" + id
	u.RawPath = base.EscapedPath() + "/@connections/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	if err := c.sign(ctx, req, body); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	var hc aws.HTTPClient = http.DefaultClient
	if c.HTTP != nil {
		hc = c.HTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusGone:
		return fmt.Errorf("%s %s: %w", what, id, relay.ErrGone)
	default:
		return fmt.Errorf("%s %s: %w", what, id, &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(msg))})
	}
}

// StatusError is an unexpected answer of the management API.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("management API answered %d", e.Code)
	}
	return fmt.Sprintf("management API answered %d: %s", e.Code, e.Body)
}

var errNoCredentials = errors.New("no AWS credentials to sign with")

func (c *Client) sign(ctx context.Context, req *http.Request, body []byte) error {
	if c.Credentials == nil {
		return errNoCredentials
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("get credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.Region, now()); err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	return nil
}
