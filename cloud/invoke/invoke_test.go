package invoke_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/cloud/invoke"
)

func client(url string) *lambda.Client {
	return lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
}

// TestRequestOnTheWire: what Invoke sends is Lambda's Invoke call, with the client context's custom keys and the
// extra headers a knock will ride on, and nothing is retried.
func TestRequestOnTheWire(t *testing.T) {
	var (
		calls atomic.Int32
		fail  atomic.Bool
		got   *http.Request
		body  []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if fail.Load() {
			w.Header().Set("X-Amzn-Requestid", "req-500")
			w.Header().Set("X-Amzn-Errortype", "ServiceException")
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "the relay fell over"})
			return
		}
		got = r
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("X-Amzn-Requestid", "11111111-2222-3333-4444-555555555555")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		w.Header().Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString([]byte("START\nEND\n")))
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	defer srv.Close()

	req := invoke.Request{Function: "fn", Qualifier: "live", Payload: []byte(`{"a": 1}`), Tail: true,
		ClientContext: map[string]any{"custom": map[string]any{"mine": "1"}}, Headers: map[string]string{"X-Plldb-Test": "v"}}
	req.SetCustom("extra", "2")
	res, err := invoke.Invoke(context.Background(), client(srv.URL), req)
	require.NoError(t, err)
	assert.Equal(t, "/2015-03-31/functions/fn/invocations", got.URL.Path)
	assert.Equal(t, "live", got.URL.Query().Get("Qualifier"))
	assert.Equal(t, "Tail", got.Header.Get("X-Amz-Log-Type"))
	assert.Equal(t, "v", got.Header.Get("X-Plldb-Test"))
	cc, err := base64.StdEncoding.DecodeString(got.Header.Get("X-Amz-Client-Context"))
	require.NoError(t, err)
	assert.JSONEq(t, `{"custom": {"mine": "1", "extra": "2"}}`, string(cc))
	assert.JSONEq(t, `{"a": 1}`, string(body))
	assert.Equal(t, invoke.Result{StatusCode: 200, RequestID: "11111111-2222-3333-4444-555555555555", ExecutedVersion: "$LATEST",
		Payload: []byte(`{"ok": true}`), Log: "START\nEND\n"}, res)

	// A 500 is reported, not retried: a retry could run the function twice.
	calls.Store(0)
	fail.Store(true)
	_, err = invoke.Invoke(context.Background(), client(srv.URL), invoke.Request{Function: "fn"})
	var ie *invoke.Error
	require.True(t, errors.As(err, &ie), "%v", err)
	assert.Equal(t, "ServiceException: the relay fell over (request id req-500)", ie.Error())
	assert.Equal(t, 500, ie.StatusCode)
	assert.Equal(t, int32(1), calls.Load())
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		req  invoke.Request
		want string
	}{
		{invoke.Request{Function: "f", Payload: []byte("{\"a\": 1} x")}, "event is not valid JSON: invalid character 'x' after top-level value (line 1, column 10)"},
		{invoke.Request{Function: "f", Payload: []byte("\xff")}, "not valid UTF-8"},
		{invoke.Request{Function: " "}, "no function named"},
	} {
		err := invoke.Check(c.req)
		require.Error(t, err, "%q", c.req.Payload)
		assert.Contains(t, err.Error(), c.want)
	}
	assert.NoError(t, invoke.Check(invoke.Request{Function: "f"}), "no event is {}")
	assert.NoError(t, invoke.Check(invoke.Request{Function: "f", Payload: []byte(` "text" `)}))
	_, err := invoke.ParseClientContext(`null`)
	assert.Error(t, err)
}
