package wsmanage_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/wsmanage"
)

type call struct {
	method, path, rawPath, auth, body string
}

// answer is one response of the stand-in @connections endpoint.
type answer struct {
	status    int
	errorType string // X-Amzn-ErrorType, as API Gateway names its errors
	body      string
}

// server stands in for a stage's @connections endpoint on loopback: it records every request and answers
// with the scripted answers in turn, repeating the last one.
func server(t *testing.T, answers ...answer) (*httptest.Server, func() []call) {
	t.Helper()
	var mu sync.Mutex
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, call{r.Method, r.URL.Path, r.URL.EscapedPath(), r.Header.Get("Authorization"), string(b)})
		a := answers[min(len(calls), len(answers))-1]
		mu.Unlock()
		if a.errorType != "" {
			w.Header().Set("X-Amzn-ErrorType", a.errorType)
		}
		if a.body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []call { mu.Lock(); defer mu.Unlock(); return append([]call(nil), calls...) }
}

var ok = answer{status: http.StatusOK}

// config is what the relay Lambda's config gives, with the SDK's standard retryer minus its sleeps.
func config(region, akid string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(akid, "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
}

func client(endpoint string) *wsmanage.Client {
	return wsmanage.New(endpoint, config("eu-west-1", "AKIDTEST"))
}

func TestPostToConnectionSendsASignedPost(t *testing.T) {
	srv, calls := server(t, ok)
	body := "{\"t\":\"ping\"}\x00\xff binary too"
	require.NoError(t, client(srv.URL+"/relay").PostToConnection(context.Background(), "a/b=", []byte(body)))
	got := calls()
	require.Len(t, got, 1)
	assert.Equal(t, http.MethodPost, got[0].method)
	assert.Equal(t, "/relay/@connections/a/b=", got[0].path)
	assert.Equal(t, "/relay/@connections/a%2Fb%3D", got[0].rawPath, "the id is one escaped path segment")
	assert.Equal(t, body, got[0].body)
	assert.True(t, strings.HasPrefix(got[0].auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/"), got[0].auth)
	assert.Contains(t, got[0].auth, "/eu-west-1/execute-api/aws4_request")
	assert.Contains(t, got[0].auth, "Signature=")
}

func TestDeleteConnectionSendsASignedDelete(t *testing.T) {
	srv, calls := server(t, answer{status: http.StatusNoContent})
	require.NoError(t, client(srv.URL+"/relay/").DeleteConnection(context.Background(), "id1"))
	got := calls()
	require.Len(t, got, 1)
	assert.Equal(t, http.MethodDelete, got[0].method)
	assert.Equal(t, "/relay/@connections/id1", got[0].rawPath)
	assert.True(t, strings.HasPrefix(got[0].auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/"), got[0].auth)
	assert.Empty(t, got[0].body)
}

func TestGoneIsErrGone(t *testing.T) {
	for name, a := range map[string]answer{
		"GoneException": {status: http.StatusGone, errorType: "GoneException", body: `{"message":"gone from test"}`},
		"bare 410":      {status: http.StatusGone},
	} {
		t.Run(name, func(t *testing.T) {
			srv, calls := server(t, a)
			c := client(srv.URL + "/relay")
			err := c.PostToConnection(context.Background(), "old", []byte("x"))
			require.ErrorIs(t, err, relay.ErrGone)
			assert.Contains(t, err.Error(), "old")
			require.ErrorIs(t, c.DeleteConnection(context.Background(), "old"), relay.ErrGone)
			assert.Len(t, calls(), 2, "a gone connection is not retried")
		})
	}
}

func TestThrottlingAndServerErrorsAreRetried(t *testing.T) {
	for name, first := range map[string]answer{
		"429 LimitExceededException": {status: http.StatusTooManyRequests, errorType: "LimitExceededException", body: `{"message":"slow down"}`},
		"500":                        {status: http.StatusInternalServerError, body: `{"message":"internal"}`},
		"503":                        {status: http.StatusServiceUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			srv, calls := server(t, first, ok)
			require.NoError(t, client(srv.URL+"/relay").PostToConnection(context.Background(), "c1", []byte("payload")))
			got := calls()
			require.Len(t, got, 2)
			assert.Equal(t, "payload", got[1].body, "the retry sends the same body")
			assert.True(t, strings.HasPrefix(got[1].auth, "AWS4-HMAC-SHA256 "), "the retry is signed too")
		})
	}
}

func TestPersistentErrorsAreErrorsNotGone(t *testing.T) {
	for name, a := range map[string]answer{
		"500 every time": {status: http.StatusInternalServerError, body: `{"message":"from test"}`},
		"403":            {status: http.StatusForbidden, errorType: "ForbiddenException"},
	} {
		t.Run(name, func(t *testing.T) {
			srv, calls := server(t, a)
			err := client(srv.URL+"/relay").PostToConnection(context.Background(), "c1", []byte("x"))
			require.Error(t, err)
			assert.NotErrorIs(t, err, relay.ErrGone)
			var api smithy.APIError
			require.ErrorAs(t, err, &api)
			assert.Contains(t, err.Error(), "c1")
			if a.status == http.StatusForbidden {
				assert.Equal(t, "ForbiddenException", api.ErrorCode())
				assert.Len(t, calls(), 1, "a refusal is not retried")
			} else {
				assert.Contains(t, err.Error(), "from test")
				assert.Len(t, calls(), retry.DefaultMaxAttempts, "the SDK gives up after its attempts")
			}
		})
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	ctx := context.Background()
	err := client("not a url").PostToConnection(ctx, "c1", nil)
	require.ErrorContains(t, err, "bad management endpoint")
	err = client("https://example.invalid/relay").PostToConnection(ctx, "", nil)
	require.ErrorContains(t, err, "empty connection id")
	cfg := config("eu-west-1", "x")
	cfg.Credentials = nil
	require.ErrorContains(t, wsmanage.New("https://example.invalid/relay", cfg).DeleteConnection(ctx, "c1"), "no AWS credentials")
	require.ErrorContains(t, (&wsmanage.Client{}).PostToConnection(ctx, "c1", nil), "not made by New")
}

func TestUnreachableEndpointIsAnError(t *testing.T) {
	srv, _ := server(t, ok)
	url := srv.URL
	srv.Close()
	err := client(url+"/relay").PostToConnection(context.Background(), "c1", []byte("x"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, relay.ErrGone)
}

func TestNewTakesRegionAndCredentialsFromConfig(t *testing.T) {
	srv, calls := server(t, ok)
	c := wsmanage.New(srv.URL+"/prod", config("ap-south-1", "AKIDCFG"))
	assert.Equal(t, srv.URL+"/prod", c.Endpoint)
	assert.Equal(t, "ap-south-1", c.Region)
	require.NoError(t, c.PostToConnection(context.Background(), "c", nil))
	assert.Contains(t, calls()[0].auth, "AKIDCFG/")
	assert.Contains(t, calls()[0].auth, "/ap-south-1/execute-api/")
	assert.Equal(t, "https://abc.execute-api.eu-west-1.amazonaws.com/relay", wsmanage.EndpointFor("abc.execute-api.eu-west-1.amazonaws.com", "relay"))
}
