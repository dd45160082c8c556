package local_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/local"
)

// TestKilledSandboxesFailOnlyTheirOwnCallers sends 1,000 invocations from 8 callers over the Invoke API while the
// function's developer sandboxes are killed at random: every caller gets exactly one answer, and the only failures
// are Runtime.ExitError answers of invocations whose own sandbox was killed.
func TestKilledSandboxesFailOnlyTheirOwnCallers(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 invocations")
	}
	p := start(t, local.Options{MaxConcurrency: 8, Template: writeApp(t, map[string]string{"app.py": `
import os, random, time
def handler(event, context):
    time.sleep(random.random() * 0.004)
    return {'pid': os.getpid()}
`}, "Fn: app.handler @30", "")})
	ex, ok := p.Executor("Fn")
	require.True(t, ok)
	url := p.Endpoint() + "/2015-03-31/functions/Fn/invocations"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: time.Minute}

	const total, callers = 1000, 8
	var next, ok200, failed atomic.Int32
	stop := make(chan struct{})
	var killer sync.WaitGroup
	killer.Add(1)
	go func() {
		defer killer.Done()
		for {
			select {
			case <-stop:
				return
			// Each kill costs a replacement sandbox's start (a Python process): killing faster starves a 2-core
			// machine into missing the relay's 3 s ack deadline (Plldb.NoDeveloper), a limit of its own.
			case <-time.After(time.Duration(50+rand.IntN(50)) * time.Millisecond):
			}
			if sbs := ex.Sandboxes(); len(sbs) > 0 {
				sb := sbs[rand.IntN(len(sbs))]
				_ = syscall.Kill(sb.PID, syscall.SIGKILL)
			}
		}
	}()
	killedBy := regexp.MustCompile(`Runtime exited with error: signal: killed`)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				resp, err := client.Post(url, "application/json", strings.NewReader(`{}`))
				if !assert.NoError(t, err) {
					continue
				}
				var body map[string]any
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
				if resp.Header.Get("X-Amz-Function-Error") == "" {
					ok200.Add(1)
					continue
				}
				failed.Add(1)
				assert.Equal(t, "Runtime.ExitError", body["errorType"], "%v", body)
				assert.Regexp(t, killedBy, fmt.Sprint(body["errorMessage"]), "a failure that is not its own sandbox's kill")
			}
		}()
	}
	wg.Wait()
	close(stop)
	killer.Wait()
	assert.EqualValues(t, total, ok200.Load()+failed.Load(), "every invocation answered exactly once")
	assert.Positive(t, failed.Load(), "the killer hit no busy sandbox; the test proved nothing")
	t.Logf("%d of %d invocations were in a killed sandbox", failed.Load(), total)
}

// TestCallersTraceIDReachesTheHandler: the caller's X-Amzn-Trace-Id is the handler's _X_AMZN_TRACE_ID, unchanged,
// as Lambda passes it on; without one the invocation gets a fresh root.
func TestCallersTraceIDReachesTheHandler(t *testing.T) {
	p := start(t, local.Options{Template: writeApp(t, map[string]string{"app.py": `
import os
def handler(event, context):
    return os.environ.get('_X_AMZN_TRACE_ID')
`}, "Fn: app.handler", "")})
	url := p.Endpoint() + "/2015-03-31/functions/Fn/invocations"
	const trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("X-Amzn-Trace-Id", trace)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var got string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	resp.Body.Close()
	assert.Equal(t, trace, got)

	resp, err = http.Post(url, "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	resp.Body.Close()
	assert.Regexp(t, `^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$`, got)
}
