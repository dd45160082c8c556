package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awsmode "github.com/plldb/plldb/adapter/aws"
	"github.com/plldb/plldb/adapter/knockkey"
	"github.com/plldb/plldb/bridge/selenv"
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
	assert.Contains(t, during.Environment[instrument.EnvSessions], s.ID+"=", "and so is its link")

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

// TestDevelopersShareAStackSelectively: two developers attach one stack selectively (the second in mirror
// mode); each one's entries are on every function, unknocked invocations still run the deployed code, a
// non-selective attach is refused naming both, the first to leave takes out only its entries, and the last one
// puts everything back.
func TestDevelopersShareAStackSelectively(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	attach := func(owner string, mirror bool) *awsmode.Session {
		t.Helper()
		t.Setenv(knockkey.DirEnv, filepath.Join(t.TempDir(), "knock")) // each developer's own machine
		o := f.options()
		o.Selective, o.Mirror, o.Owner = true, mirror, owner
		s, err := awsmode.Attach(ctx, o)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = s.Close(context.Background()) })
		return s
	}
	alice := attach("alice@host", false)
	bob := attach("bob@host", true)

	sessionsOn := func(fn string) map[string]selenv.Link {
		t.Helper()
		env := f.h.Settings(t, f.fns[fn].Name).Environment
		assert.NotContains(t, env, instrument.EnvSession, "selective mode names its sessions in PLLDB_SESSIONS")
		assert.NotContains(t, env, instrument.EnvFunctionKey)
		links, err := selenv.ParseSessions(env[instrument.EnvSessions])
		require.NoError(t, err)
		keys, err := selenv.ParseKnockKeys(env[instrument.EnvKnockKeys])
		require.NoError(t, err)
		out := map[string]selenv.Link{}
		for _, l := range links {
			out[l.Session] = l
			assert.Contains(t, keys, l.Session, "every linked session can knock")
		}
		assert.Len(t, keys, len(links))
		return out
	}
	for fn := range f.fns {
		links := sessionsOn(fn)
		require.Len(t, links, 2, fn)
		assert.False(t, links[alice.ID].Mirror)
		assert.True(t, links[bob.ID].Mirror, "bob attached with --mirror")
		assert.NotEqual(t, links[alice.ID].FunctionKey, links[bob.ID].FunctionKey, "each session has its own function key")
	}
	assert.Equal(t, "deployed", f.invokeEvent(t, "OrdersFunction", httpEvent(""))["where"])

	o := f.options()
	o.Owner = "carol@host"
	_, err := awsmode.Attach(ctx, o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "held by selective sessions "+strings.Join(sortedHolders(alice, bob), ", ")+": detach them or attach with --selective")
	o.Mirror = true
	_, err = awsmode.Attach(ctx, o)
	assert.ErrorContains(t, err, "mirror mode goes with selective mode")

	results, err := alice.Close(ctx)
	require.NoError(t, err)
	require.Len(t, results, len(f.fns))
	for _, r := range results {
		assert.Equal(t, instrument.Left, r.Outcome, r.Message)
		assert.Contains(t, r.Message, bob.ID)
	}
	for fn := range f.fns {
		links := sessionsOn(fn)
		assert.Len(t, links, 1, fn)
		assert.Contains(t, links, bob.ID, "bob's entries stay")
	}
	assert.Equal(t, "deployed", f.invokeEvent(t, "OrdersFunction", httpEvent(""))["where"])

	results, err = bob.Close(ctx)
	require.NoError(t, err)
	for _, r := range results {
		assert.Equal(t, instrument.Restored, r.Outcome, r.Message)
	}
	f.assertRestored(t)
}

func sortedHolders(ss ...*awsmode.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID + " (" + s.Owner + ")"
	}
	slices.Sort(out)
	return out
}
