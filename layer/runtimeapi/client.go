package runtimeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// MaxEvent bounds the event body Client.Next accepts. Lambda's own limits are lower (6 MB synchronous); the
// margin only guards against a broken server.
const MaxEvent = 16 * 1024 * 1024

// Client talks to a Runtime API as a runtime does. It is safe for concurrent use, but the API itself serves
// one invocation at a time.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a Client for the Runtime API at addr (host:port, the value of AWS_LAMBDA_RUNTIME_API).
// hc nil means a keep-alive client with no overall timeout (GET /next blocks until an event arrives) that
// never goes through an HTTP proxy from the environment.
func NewClient(addr string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        4,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     0,
			DisableCompression:  true,
		}}
	}
	return &Client{base: "http://" + addr + "/" + APIVersion + "/runtime/", hc: hc}
}

// CloseIdleConnections drops the kept-alive connections, e.g. when the Client is no longer used.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Next waits for the next invocation. When a header is malformed but the request id is present, it returns the
// invocation as far as it could be read together with an error wrapping ErrMalformed, so a caller that only
// passes invocations through can still do so.
func (c *Client) Next(ctx context.Context) (Invocation, error) {
	const op = "GET /runtime/invocation/next"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"invocation/next", nil)
	if err != nil {
		return Invocation{}, fmt.Errorf("runtime api %s: %w", op, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Invocation{}, fmt.Errorf("runtime api %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxEvent+1))
	if err != nil {
		return Invocation{}, fmt.Errorf("runtime api %s: read event: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Invocation{}, apiError(op, resp.StatusCode, body)
	}
	if len(body) > MaxEvent {
		return Invocation{}, fmt.Errorf("runtime api %s: event larger than %d bytes", op, MaxEvent)
	}
	inv, err := ParseInvocation(resp.Header, body)
	if err != nil {
		return inv, fmt.Errorf("runtime api %s: %w", op, err)
	}
	return inv, nil
}

// Respond posts the handler's result for invocation id. hdr adds headers (e.g. Content-Type).
func (c *Client) Respond(ctx context.Context, id string, payload []byte, hdr http.Header) error {
	return c.post(ctx, "POST /runtime/invocation/{id}/response", "invocation/"+url.PathEscape(id)+"/response", payload, hdr)
}

// Error posts an error document for invocation id, with errorType in Lambda-Runtime-Function-Error-Type
// unless hdr already carries that header.
func (c *Client) Error(ctx context.Context, id string, body []byte, errorType string, hdr http.Header) error {
	return c.post(ctx, "POST /runtime/invocation/{id}/error", "invocation/"+url.PathEscape(id)+"/error", body, errorHeaders(hdr, errorType))
}

// InitError reports a failed initialisation.
func (c *Client) InitError(ctx context.Context, body []byte, errorType string) error {
	return c.post(ctx, "POST /runtime/init/error", "init/error", body, errorHeaders(nil, errorType))
}

func errorHeaders(hdr http.Header, errorType string) http.Header {
	h := make(http.Header, len(hdr)+2)
	for k, v := range hdr {
		h[k] = v
	}
	if errorType != "" && h.Get(HeaderErrorType) == "" {
		h.Set(HeaderErrorType, errorType)
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", ErrorContentType)
	}
	return h
}

func (c *Client) post(ctx context.Context, op, path string, body []byte, hdr http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("runtime api %s: %w", op, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("runtime api %s: %w", op, err)
	}
	defer resp.Body.Close()
	// Small answers only; reading them keeps the connection reusable.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return apiError(op, resp.StatusCode, answer)
	}
	return nil
}

func apiError(op string, status int, body []byte) *APIError {
	e := &APIError{Op: op, Status: status}
	var doc ErrorDocument
	if json.Unmarshal(body, &doc) == nil && (doc.ErrorType != "" || doc.ErrorMessage != "") {
		e.ErrorType, e.Message = doc.ErrorType, doc.ErrorMessage
	} else if len(body) > 0 {
		if len(body) > 512 {
			body = body[:512]
		}
		e.Message = string(body)
	}
	return e
}
