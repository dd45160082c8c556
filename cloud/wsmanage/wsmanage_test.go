package wsmanage_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/wsmanage"
)

type call struct {
	method, path, auth, body string
}

// server answers every request with status and records it.
func server(t *testing.T, status int) (*httptest.Server, func() []call) {
	t.Helper()
	var mu sync.Mutex
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, call{r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), string(b)})
		mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"message":"from test"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []call { mu.Lock(); defer mu.Unlock(); return append([]call(nil), calls...) }
}

func client(endpoint string) *wsmanage.Client {
	return &wsmanage.Client{
		Endpoint:    endpoint,
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	}
}

func TestPostToConnectionSendsASignedPost(t *testing.T) {
	srv, calls := server(t, http.StatusOK)
	c := client(srv.URL + "/relay")
	require.NoError(t, c.PostToConnection(context.Background(), "abc=", []byte(`{"t":"ping"}`)))
	got := calls()
	require.Len(t, got, 1)
	assert.Equal(t, http.MethodPost, got[0].method)
	assert.Equal(t, "/relay/@connections/abc=", got[0].path)
	assert.Equal(t, `{"t":"ping"}`, got[0].body)
	assert.True(t, strings.HasPrefix(got[0].auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/"), got[0].auth)
	assert.Contains(t, got[0].auth, "/eu-west-1/execute-api/aws4_request")
}

func TestDeleteConnectionSendsDelete(t *testing.T) {
	srv, calls := server(t, http.StatusNoContent)
	require.NoError(t, client(srv.URL+"/relay/").DeleteConnection(context.Background(), "id1"))
	got := calls()
	require.Len(t, got, 1)
	assert.Equal(t, http.MethodDelete, got[0].method)
	assert.Equal(t, "/relay/@connections/id1", got[0].path)
}

func TestGoneIsErrGone(t *testing.T) {
	srv, _ := server(t, http.StatusGone)
	c := client(srv.URL + "/relay")
	err := c.PostToConnection(context.Background(), "old", []byte("x"))
	require.ErrorIs(t, err, relay.ErrGone)
	assert.Contains(t, err.Error(), "old")
	require.ErrorIs(t, c.DeleteConnection(context.Background(), "old"), relay.ErrGone)
}

func TestServerErrorsAreErrorsNotGone(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusForbidden, http.StatusTooManyRequests} {
		srv, _ := server(t, status)
		err := client(srv.URL+"/relay").PostToConnection(context.Background(), "c1", []byte("x"))
		require.Error(t, err, status)
		assert.NotErrorIs(t, err, relay.ErrGone)
		var se *wsmanage.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, status, se.Code)
		assert.Contains(t, err.Error(), "from test")
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	ctx := context.Background()
	err := client("not a url").PostToConnection(ctx, "c1", nil)
	require.ErrorContains(t, err, "bad management endpoint")
	err = client("https://example.invalid/relay").PostToConnection(ctx, "", nil)
	require.ErrorContains(t, err, "empty connection id")
	c := client("https://example.invalid/relay")
	c.Credentials = nil
	require.ErrorContains(t, c.PostToConnection(ctx, "c1", nil), "no AWS credentials")
}

func TestUnreachableEndpointIsAnError(t *testing.T) {
	srv, _ := server(t, http.StatusOK)
	url := srv.URL
	srv.Close()
	err := client(url+"/relay").PostToConnection(context.Background(), "c1", []byte("x"))
	require.Error(t, err)
	assert.NotErrorIs(t, err, relay.ErrGone)
}

func TestNewTakesRegionAndCredentialsFromConfig(t *testing.T) {
	srv, calls := server(t, http.StatusOK)
	cfg := aws.Config{Region: "ap-south-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDCFG", "s", "")}
	require.NoError(t, wsmanage.New(srv.URL+"/prod", cfg).PostToConnection(context.Background(), "c", nil))
	assert.Contains(t, calls()[0].auth, "AKIDCFG/")
	assert.Contains(t, calls()[0].auth, "/ap-south-1/execute-api/")
	assert.Equal(t, "https://abc.execute-api.eu-west-1.amazonaws.com/relay", wsmanage.EndpointFor("abc.execute-api.eu-west-1.amazonaws.com", "relay"))
}
