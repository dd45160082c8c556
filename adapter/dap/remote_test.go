package dap

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/daptest"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

func TestListenRefusesAddressesOtherMachinesReach(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "devbox.example:0"} {
		l, err := Listen(addr, Options{})
		if l != nil {
			_ = l.Close()
		}
		require.Error(t, err, addr)
		assert.True(t, errors.Is(err, ErrNotLoopback), "%s: %v", addr, err)
		assert.Contains(t, err.Error(), "--allow-remote", addr)
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		l, err := Listen(addr, Options{})
		require.NoError(t, err, addr)
		_ = l.Close()
	}
	_, err := ListenRemote("127.0.0.1:0", "short", Options{})
	require.Error(t, err, "a remote listener needs a real token")
}

func TestLaunchRefusesANonLoopbackInvokeHost(t *testing.T) {
	app := helloApp(t)
	for _, host := range []string{"0.0.0.0", "::", "10.1.2.3", "devbox.example"} {
		_, err := parseLaunch([]byte(`{"template": "` + filepath.Join(app, "template.yaml") + `", "invokeHost": "` + host + `"}`))
		require.Error(t, err, host)
		assert.Contains(t, err.Error(), `"invokeHost"`, host)
		assert.Contains(t, err.Error(), "not a loopback address", host)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		_, err := parseLaunch([]byte(`{"template": "` + filepath.Join(app, "template.yaml") + `", "invokeHost": "` + host + `"}`))
		require.NoError(t, err, host)
	}
}

func TestLaunchConcurrencyAttributes(t *testing.T) {
	tpl := filepath.Join(helloApp(t), "template.yaml")
	cfg, err := parseLaunch([]byte(`{"template": "` + tpl + `", "maxConcurrency": 3, "accountConcurrency": 50}`))
	require.NoError(t, err)
	assert.Equal(t, 3, cfg.MaxConcurrency)
	assert.Equal(t, 50, cfg.AccountConcurrency)
	cfg, err = parseLaunch([]byte(`{"template": "` + tpl + `"}`))
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxConcurrency, cfg.MaxConcurrency, "unset: plldb local's default")
	assert.Equal(t, DefaultAccountConcurrency, cfg.AccountConcurrency, "unset: plldb local's default")
	for raw, want := range map[string]string{
		`"maxConcurrency": 0`:       `"maxConcurrency" 0 must be at least 1`,
		`"maxConcurrency": "ten"`:   `"maxConcurrency" must be an integer`,
		`"accountConcurrency": -1`:  `"accountConcurrency" -1 must be at least 1`,
		`"accountConcurrency": 1.5`: `"accountConcurrency" must be an integer`,
	} {
		_, err := parseLaunch([]byte(`{"template": "` + tpl + `", ` + raw + `}`))
		require.Error(t, err, raw)
		assert.Contains(t, err.Error(), want, raw)
	}
}

// startRemote serves sessions behind the token gate on loopback (the gate is the same on any address).
func startRemote(t *testing.T, token string) string {
	t.Helper()
	l, err := ListenRemote("127.0.0.1:0", token, Options{Logger: testLogger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = l.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

func dialDAP(t *testing.T, addr string) *daptest.Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := daptest.New(conn)
	c.Timeout = 30 * time.Second
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func expectClosed(t *testing.T, c *daptest.Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the adapter kept the unauthenticated connection open")
	}
}

func TestRemoteSessionsNeedTheToken(t *testing.T) {
	const token = "0123456789abcdef-remote-token"
	addr := startRemote(t, token)
	app := helloApp(t)
	launchArgs := func(extra map[string]any) map[string]any {
		a := map[string]any{"mode": "local", "template": filepath.Join(app, "template.yaml"), "invokePort": 0,
			"python": pyenv.Python(t), "functions": []string{"HelloFunction"}}
		for k, v := range extra {
			a[k] = v
		}
		return a
	}

	for name, extra := range map[string]map[string]any{
		"no token":       nil,
		"wrong token":    {"token": "0123456789abcdef-wrong-token!"},
		"token prefix":   {"token": token[:10]},
		"not a string":   {"token": 12345},
		"python instead": {"python": "/bin/sh"},
	} {
		c := dialDAP(t, addr)
		c.ExpectInitializeResponse(t)
		m := c.RequestError(t, "launch", launchArgs(extra))
		assert.Contains(t, m.ErrorText(), `"token"`, name)
		assert.Contains(t, m.ErrorText(), "--allow-remote", name)
		expectClosed(t, c)
	}
	// attach is gated the same way.
	c := dialDAP(t, addr)
	m := c.RequestError(t, "attach", map[string]any{"mode": "aws", "stackName": "shop"})
	assert.Contains(t, m.ErrorText(), `"token"`)
	expectClosed(t, c)
	// Nothing but initialize comes before the authenticating launch.
	c = dialDAP(t, addr)
	m = c.RequestError(t, "evaluate", map[string]any{"expression": "__import__('os').system('id')"})
	assert.Contains(t, m.ErrorText(), "must come first")
	expectClosed(t, c)
	// Garbage instead of DAP, and a header line that never ends, close the connection too.
	c = dialDAP(t, addr)
	require.NoError(t, c.SendRaw([]byte(`[1,2,3]`)))
	expectClosed(t, c)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	junk := []byte(strings.Repeat("x", 64<<10))
	for i := 0; i < 40; i++ { // 2.5 MiB without a line end: more than an unauthenticated client may send
		if _, err := conn.Write(junk); err != nil {
			break
		}
	}
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	require.Error(t, err, "the connection is closed")
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not left hanging: %v", err)
	_ = conn.Close()

	// With the token the session is an ordinary one, and the listener served the refused clients one by one.
	c = dialDAP(t, addr)
	c.ExpectInitializeResponse(t)
	c.Request(t, "launch", launchArgs(map[string]any{"token": token}))
	c.ExpectOutputEventContaining(t, "Invoke API at ")
	c.ExpectInitializedEvent(t)
	c.Request(t, "configurationDone", nil)
	c.Request(t, "disconnect", nil)
}
