package executor

import (
	"encoding/json"
	"testing"
)

// FuzzInvocationInput feeds arbitrary caller input (event, client context, cognito identity) to the checks that
// run before anything reaches Python: they must reject or pass it, never panic, and what passes must be JSON.
func FuzzInvocationInput(f *testing.F) {
	f.Add([]byte(`{"a": 1}`), `{"custom": {}}`, `{"cognitoIdentityId": "x"}`)
	f.Add([]byte(``), `eyJjdXN0b20iOiB7fX0=`, ``)
	f.Add([]byte(`[1, 2`), `%%%`, `[1]`)
	f.Add([]byte(`"\ud800"`), `{"a":}`, `{`)
	e := &Executor{spec: Spec{FunctionName: "fn", Region: "us-east-1", TimeoutSec: 3}}
	f.Fuzz(func(t *testing.T, event []byte, clientContext, cognito string) {
		p, err := e.invokeParams(Invocation{Event: event, ClientContext: clientContext, CognitoIdentity: cognito})
		if err != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("accepted input does not marshal: %v", err)
		}
		if !json.Valid(b) {
			t.Fatalf("accepted input gives invalid JSON %s", b)
		}
		for _, raw := range []string{p.ClientContext, p.CognitoIdentity} {
			var obj map[string]any
			if raw != "" && json.Unmarshal([]byte(raw), &obj) != nil {
				t.Fatalf("accepted context %q is not a JSON object", raw)
			}
		}
	})
}
