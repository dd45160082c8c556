package proxy

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/selenv"
	"github.com/plldb/plldb/bridge/ticket"
	"github.com/plldb/plldb/bridge/wire"
	"github.com/plldb/plldb/testfixtures/rie"
)

// Mirror mode against the runtime users run: awslambdaric under AWS's Runtime Interface Emulator, behind the
// built layer attached selectively with a mirror link to the embedded relay. awslambdaric posts its answers with
// its own HTTP client (libcurl in its native runtime client), not the stand-in runtime the other layer tests use,
// so this is where the layer's reading of the runtime's requests meets the client Lambda really runs: whatever
// it sends (Expect: 100-continue on large bodies, chunking, header spelling), the caller must get the answer
// exactly as without plldb, and the developer the same bytes in the deployed envelope.
func TestSelectiveMirrorUnderRIEWithAWSLambdaRIC(t *testing.T) {
	rig := startRelay(t)
	dev := newDeveloper(t, rig.session.ID)
	// RIE names the function plldb-rie-test (testfixtures/rie): the link's key is the session's key for it.
	link := selenv.Link{Session: rig.session.ID, FunctionKey: ticket.FunctionKey(rig.session.Keys[wire.RoleFunction], "plldb-rie-test"), Mirror: true}
	way := rie.Wrapped("rie+layer(mirror)", filepath.Join(layerDir, "plldb", "wrapper"),
		"PLLDB_ENDPOINT="+rig.gw.URL(),
		"PLLDB_AUDIENCE="+rig.audience,
		"PLLDB_LOGICAL_ID=CasesFunction",
		"PLLDB_SELECTIVE=true",
		"PLLDB_KNOCK_STACK=orders",
		"PLLDB_KNOCK_KEYS="+selenv.FormatKnockKeys(map[string]ed25519.PublicKey{rig.session.ID: dev.pub()}),
		"PLLDB_SESSIONS="+selenv.FormatSessions([]selenv.Link{link}),
	)
	fn := rie.Function{Dir: rieHandlers(), Handler: "cases.handler"}
	inst := way.Start(t, fn)
	ref := rie.Direct().Start(t, fn)
	tok := dev.knock(t, knock.Claims{})

	for _, c := range []struct {
		name  string
		event map[string]any
	}{
		{"result", map[string]any{"case": "result", "value": map[string]any{"a": 1, "b": []any{"x", 2.5}}}},
		// Over 1 MB: where libcurl starts asking Expect: 100-continue before it sends a body.
		{"big", map[string]any{"case": "big", "n": 2 << 20}},
		{"error", map[string]any{"case": "fail", "why": "mirrored"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			plain, err := json.Marshal(c.event)
			require.NoError(t, err)
			c.event["headers"] = map[string]any{"X-Plldb-Knock": tok}
			knocked, err := json.Marshal(c.event)
			require.NoError(t, err)

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			want, err := ref.Invoke(ctx, rie.Event{Body: plain})
			require.NoError(t, err)
			got, err := inst.Invoke(ctx, rie.Event{Body: knocked})
			require.NoError(t, err)
			assert.Equal(t, want.Status, got.Status)
			// rie.Common: request ids differ between any two invocations.
			assert.Equal(t, string(rie.Common(want.Body)), string(rie.Common(got.Body)), "the caller gets what awslambdaric alone answers")
			for _, h := range []string{"Content-Type", "X-Amz-Function-Error"} {
				assert.Equal(t, want.Header.Get(h), got.Header.Get(h), h)
			}

			e := expectOn(t, rig.dev, wire.TypeInvoke)
			var inv wire.Invoke
			require.NoError(t, e.DecodeBody(&inv))
			assert.True(t, inv.Mirror)
			assert.NotContains(t, string(inv.Event), "Plldb-Knock", "the copy carries no knock")
			e = expectOn(t, rig.dev, wire.TypeDeployed)
			var dep wire.Deployed
			require.NoError(t, e.DecodeBody(&dep))
			require.NoError(t, dep.Check(e.ID))
			assert.Equal(t, inv.RequestID, dep.RequestID)
			assert.Equal(t, string(got.Body), string(dep.Payload), "the developer gets the bytes the caller got")
			assert.Equal(t, c.name == "error", dep.Error, "the deployed envelope says whether the runtime posted an error")
		})
	}
	logs := inst.Logs()
	assert.NotContains(t, logs, tok)
	assert.NotContains(t, logs, "cannot be followed", "every answer was followed on its connection")
	assert.Equal(t, 3, strings.Count(logs, "mirror: copy sent to the developer"), "%s", logs)
}
