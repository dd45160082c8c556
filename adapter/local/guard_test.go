package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/adapter/local"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/testfixtures/apps"
)

// countingObserver counts the invocations that reached the developer side.
type countingObserver struct{ started atomic.Int64 }

func (c *countingObserver) Started(*wire.Invoke)                           { c.started.Add(1) }
func (c *countingObserver) Finished(*wire.Invoke, executor.Outcome, error) {}

func sdkClient(endpoint, accessKey string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, "any-secret", ""),
	})
}

// rawPost sends one HTTP/1.1 request written byte for byte, as a browser would put it on the wire, and returns
// the status and body.
func rawPost(t *testing.T, p *local.Pipeline, function string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	u, err := url.Parse(p.Endpoint())
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	body := `{"name":"browser"}`
	var b strings.Builder
	fmt.Fprintf(&b, "POST /2015-03-31/functions/%s/invocations HTTP/1.1\r\n", function)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	_, err = io.WriteString(c, b.String())
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, out
}

func requireRefused(t *testing.T, status int, hdr http.Header, body []byte, want string) {
	t.Helper()
	require.Equal(t, http.StatusForbidden, status, "%s", body)
	assert.Equal(t, "AccessDeniedException", hdr.Get("X-Amzn-ErrorType"))
	var e struct{ Type, Message string }
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	assert.Equal(t, "User", e.Type)
	assert.Contains(t, e.Message, want)
}

func TestInvokeAPIRefusesBrowsersAndForeignHosts(t *testing.T) {
	obs := &countingObserver{}
	p := start(t, local.Options{Template: apps.HelloTemplate(), Hooks: devside.Hooks{Observer: obs}})
	port := p.Endpoint()[strings.LastIndexByte(p.Endpoint(), ':')+1:]

	// A page on http://evil.example POSTs a "simple" request (no preflight) to the endpoint.
	status, hdr, body := rawPost(t, p, "HelloFunction",
		"Host: 127.0.0.1:"+port, "Origin: http://evil.example", "Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: no-cors",
		"User-Agent: Mozilla/5.0")
	requireRefused(t, status, hdr, body, "browser request (Origin: \"http://evil.example\")")
	// Any Origin, even a loopback one: no web page has business here.
	status, hdr, body = rawPost(t, p, "HelloFunction", "Host: localhost:"+port, "Origin: http://localhost:"+port)
	requireRefused(t, status, hdr, body, "browser request")
	status, hdr, body = rawPost(t, p, "HelloFunction", "Host: localhost:"+port, "Sec-Fetch-Site: same-site")
	requireRefused(t, status, hdr, body, "Sec-Fetch-Site: same-site")
	// After a DNS rebinding evil.example resolves to 127.0.0.1: the page's same-origin requests carry its Host
	// (and no Origin for a GET or a same-origin fetch in some browsers).
	status, hdr, body = rawPost(t, p, "HelloFunction", "Host: evil.example:"+port)
	requireRefused(t, status, hdr, body, `refused Host "evil.example:`+port+`"`)
	for _, host := range []string{"evil.example", "127.0.0.1", "127.0.0.1:1", "localhost.evil.example:" + port, "0.0.0.0:" + port, "[::ffff:10.0.0.1]:" + port} {
		status, hdr, body = rawPost(t, p, "HelloFunction", "Host: "+host)
		requireRefused(t, status, hdr, body, "refused Host")
	}
	// The checks come first: a refused request learns nothing, not even whether the function exists.
	status, hdr, body = rawPost(t, p, "NoSuchFunction", "Host: evil.example:"+port)
	requireRefused(t, status, hdr, body, "refused Host")
	assert.Zero(t, obs.started.Load(), "no refused request ran the function")

	// What programs send passes: the loopback names with the exact port, no Origin.
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port, "127.0.0.2:" + port} {
		status, _, body = rawPost(t, p, "HelloFunction", "Host: "+host)
		assert.Equal(t, http.StatusOK, status, "Host %s: %s", host, body)
	}
	status, _, body = rawPost(t, p, "HelloFunction", "Host: 127.0.0.1:"+port, "Sec-Fetch-Site: none")
	assert.Equal(t, http.StatusOK, status, "%s", body)

	// The AWS SDK (as the AWS CLI) works unchanged, with any credentials.
	for _, ep := range []string{p.Endpoint(), "http://localhost:" + port} {
		out, err := sdkClient(ep, "AKIDEXAMPLE").Invoke(context.Background(), &lambda.InvokeInput{
			FunctionName: aws.String("HelloFunction"), Payload: []byte(`{"name":"sdk"}`),
		})
		require.NoError(t, err, ep)
		assert.Nil(t, out.FunctionError)
		assert.Contains(t, string(out.Payload), "hello from dev")
	}
	assert.EqualValues(t, 8, obs.started.Load())
}

func TestInvokeAPIOpenToOtherMachinesWantsTheToken(t *testing.T) {
	const token = "s3cr3t-t0ken-0123456789abcdef"
	obs := &countingObserver{}
	// 127.0.0.1 with AllowRemote: the token rules apply without this test opening a port to the network.
	p := start(t, local.Options{Template: apps.HelloTemplate(), AllowRemote: true, Token: token, Hooks: devside.Hooks{Observer: obs}})
	port := p.Endpoint()[strings.LastIndexByte(p.Endpoint(), ':')+1:]

	for _, auth := range []string{"", "Bearer wrong-token-0123456789abcdef", "Bearer " + token[:10], "Basic " + token, token,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00"} {
		hdrs := []string{"Host: 127.0.0.1:" + port}
		if auth != "" {
			hdrs = append(hdrs, "Authorization: "+auth)
		}
		status, hdr, body := rawPost(t, p, "HelloFunction", hdrs...)
		requireRefused(t, status, hdr, body, "--allow-remote")
	}
	_, err := sdkClient(p.Endpoint(), "AKIDEXAMPLE").Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("HelloFunction")})
	var apiErr smithy.APIError
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, "AccessDeniedException", apiErr.ErrorCode())
	// Browsers stay out even with the token.
	status, hdr, body := rawPost(t, p, "HelloFunction", "Host: 127.0.0.1:"+port, "Authorization: Bearer "+token, "Origin: http://evil.example")
	requireRefused(t, status, hdr, body, "browser request")
	assert.Zero(t, obs.started.Load())

	// With the token: any Host (callers on other machines use the machine's name), bearer or SDK.
	status, _, body = rawPost(t, p, "HelloFunction", "Host: devbox.example:"+port, "Authorization: Bearer "+token)
	assert.Equal(t, http.StatusOK, status, "%s", body)
	out, err := sdkClient(p.Endpoint(), token).Invoke(context.Background(), &lambda.InvokeInput{
		FunctionName: aws.String("HelloFunction"), Payload: []byte(`{"name":"remote"}`),
	})
	require.NoError(t, err)
	assert.Contains(t, string(out.Payload), "hello from dev")
}

func TestInvokeAPIBindsOnlyLoopbackUnlessAllowed(t *testing.T) {
	ctx := context.Background()
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.1", "devbox.example", " "} {
		_, err := local.Start(ctx, local.Options{Template: apps.HelloTemplate(), Host: host, Port: 0})
		require.Error(t, err, host)
		assert.Contains(t, err.Error(), "not a loopback address", host)
		assert.Contains(t, err.Error(), "--allow-remote", host)
	}
	_, err := local.Start(ctx, local.Options{Template: apps.HelloTemplate(), Host: "0.0.0.0", AllowRemote: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs a token")

	for _, h := range []string{"127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost", "LocalHost", "::ffff:127.0.0.1"} {
		assert.True(t, local.IsLoopbackHost(h), h)
	}
	for _, h := range []string{"", "0.0.0.0", "::", "10.0.0.1", "localhost.", "example.com", "[::]"} {
		assert.False(t, local.IsLoopbackHost(h), h)
	}
}
