package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A local process that learned a connection id (from a log, say) must not be able to inject a message into
// that connection: the @connections API wants the gateway's management token, which only its owner holds.
func TestManagementAPIRefusesCallersWithoutTheToken(t *testing.T) {
	g, r := startGateway(t, Config{})
	ws, id := mustDial(t, g, r, "developer")

	injected := []byte(`{"t":"invoke","id":"evil","b":{}}`)
	for name, auth := range map[string]string{
		"no Authorization":     "",
		"empty bearer":         "Bearer ",
		"wrong bearer":         "Bearer " + strings.Repeat("A", len(g.ManagementToken())),
		"token of another gw":  "Bearer " + New(Config{}, nil).ManagementToken(),
		"token without scheme": g.ManagementToken(),
		"basic":                "Basic " + g.ManagementToken(),
		"prefix of the token":  "Bearer " + g.ManagementToken()[:20],
	} {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			status, body, hdr := mgmtAuth(t, g, auth, method, id, injected)
			assert.Equal(t, http.StatusForbidden, status, "%s %s", name, method)
			assert.Equal(t, "ForbiddenException", hdr.Get("X-Amzn-ErrorType"), "%s %s", name, method)
			assert.Contains(t, string(body), `"message"`, "%s %s", name, method)
		}
	}
	// Unknown ids answer the same 403, not 410: a caller without the token learns nothing about which ids live.
	status, _, _ := mgmtAuth(t, g, "", http.MethodGet, "AAAAAAAAAAAAAAA=", nil)
	assert.Equal(t, http.StatusForbidden, status)

	// An AWS SDK client signing with SigV4 and made-up credentials is a caller without the token too.
	sdk := apigatewaymanagementapi.New(apigatewaymanagementapi.Options{
		Region:       Region,
		BaseEndpoint: aws.String(g.ManagementURL()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""),
	})
	_, err := sdk.PostToConnection(context.Background(), &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: injected})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "403")

	// With the token it works, and the marker is the first message the connection ever receives: none of the
	// refused posts reached it.
	status, _, _ = mgmt(t, g, http.MethodPost, id, []byte("marker"))
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, data, err := ws.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "marker", string(data))
	status, _, _ = mgmt(t, g, http.MethodGet, id, nil)
	assert.Equal(t, http.StatusOK, status)
	assert.Empty(t, r.disconnectsOf(id), "the refused DELETEs closed nothing")
}

func TestManagementTokensAreLongAndPerGateway(t *testing.T) {
	a, b := New(Config{}, nil).ManagementToken(), New(Config{}, nil).ManagementToken()
	assert.GreaterOrEqual(t, len(a), 43, "256 bits")
	assert.NotEqual(t, a, b)
}
