package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/cloud/instrument"
)

// invokeEvent invokes logicalID with event and returns the handler's answer.
func (f *fixture) invokeEvent(t *testing.T, logicalID string, event any) map[string]any {
	t.Helper()
	payload, err := json.Marshal(event)
	require.NoError(t, err)
	resp, err := f.h.Invoke(context.Background(), f.fns[logicalID].Name, payload)
	require.NoError(t, err)
	require.False(t, resp.Error, "invocation failed: %s", resp.Payload)
	var out map[string]any
	require.NoError(t, json.Unmarshal(resp.Payload, &out), "payload %s", resp.Payload)
	return out
}

func httpEvent(knock string) map[string]any {
	headers := map[string]any{"Accept": "application/json"}
	if knock != "" {
		headers["x-plldb-knock"] = knock
	}
	return map[string]any{"resource": "/orders", "path": "/orders", "httpMethod": "GET", "headers": headers,
		"requestContext": map[string]any{"stage": "dev"}, "body": nil}
}

func TestSelectiveAttachSendsOnlyKnockedInvocationsToTheDeveloper(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "knock") // created 0700 by Save: the session file holds a private key
	t.Setenv(knockkey.DirEnv, dir)
	f := newFixture(t)
	o := f.options()
	o.Selective = true
	s, err := awsmode.Attach(context.Background(), o)
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_, _ = s.Close(context.Background())
		}
	})
	require.NotNil(t, s.KnockSession())

	during := f.h.Settings(t, f.fns["OrdersFunction"].Name)
	assert.Equal(t, "true", during.Environment[instrument.EnvSelective])
	assert.Equal(t, f.stack, during.Environment[instrument.EnvKnockStack])
	assert.Contains(t, during.Environment[instrument.EnvKnockKeys], s.ID+"=", "the key is listed under the session the layer links to")

	unknocked := f.invokeEvent(t, "OrdersFunction", httpEvent(""))
	assert.Equal(t, "deployed", unknocked["where"], "an invocation with no knock runs the deployed code")

	// The knock comes from the saved session file, as `plldb knock --stack-name` mints it.
	ks, err := knockkey.Load(f.stack)
	require.NoError(t, err)
	assert.Equal(t, s.ID, ks.ID)
	tok, err := ks.Mint(knockkey.MintOptions{})
	require.NoError(t, err)
	knocked := f.invokeEvent(t, "OrdersFunction", httpEvent(tok))
	assert.Equal(t, "local", knocked["where"], "a knocked invocation reaches the developer's handler")
	ev, _ := json.Marshal(knocked["event"])
	assert.NotContains(t, string(ev), tok, "the handler never sees the knock")
	assert.NotContains(t, string(ev), "x-plldb-knock")
	assert.Contains(t, string(ev), "application/json", "the rest of the event is intact")

	// A knock of another session (a key the function does not list) runs the deployed code.
	other, err := knockkey.New(f.stack)
	require.NoError(t, err)
	forged, err := other.Mint(knockkey.MintOptions{})
	require.NoError(t, err)
	assert.Equal(t, "deployed", f.invokeEvent(t, "OrdersFunction", httpEvent(forged))["where"])

	results, err := s.Close(context.Background())
	closed = true
	require.NoError(t, err)
	for _, r := range results {
		assert.Equal(t, instrument.Restored, r.Outcome, r.Message)
	}
	f.assertRestored(t)
	_, err = knockkey.Load(f.stack)
	assert.True(t, errors.Is(err, knockkey.ErrNoSession), "Close removes the session file: %v", err)
}
