package executor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The invocation that arrives right after a timeout runs in a fresh process; it was sent to the one being
// killed and answered Runtime.ExitError (found by TestExecutorMatchesAWSRuntime/timeout).
func TestInvocationAfterATimeoutRuns(t *testing.T) {
	e, _ := start(t, Spec{TimeoutSec: 1, EnforceTimeout: true}, map[string]string{
		"app.py": "import time\ndef handler(event, context):\n    time.sleep(event.get('sleep', 0))\n    return 'ok'\n",
	})
	for i := 0; i < 3; i++ {
		out := invoke(t, e, Invocation{Event: []byte(`{"sleep": 5}`)})
		require.NotNil(t, out.Err)
		assert.Equal(t, "Sandbox.Timedout", out.Err.ErrorType)
		out = invoke(t, e, Invocation{Event: []byte(`{}`)})
		require.Nil(t, out.Err, "round %d: %+v", i, out.Err)
		assert.Equal(t, `"ok"`, string(out.Payload))
	}
}
