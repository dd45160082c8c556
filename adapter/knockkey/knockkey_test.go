package knockkey

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
)

// cacheDir points os.UserCacheDir at a fresh directory for the test.
func cacheDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", d)
	t.Setenv("HOME", d)
	return d
}

func TestSaveLoadRemove(t *testing.T) {
	base := cacheDir(t)
	s, err := New(LocalAudience)
	require.NoError(t, err)
	s.Endpoint = "http://127.0.0.1:3001"
	require.NoError(t, s.Save())

	path := filepath.Join(base, "plldb", "knock", "local.json")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the file holds a private key")
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())

	got, err := Load(LocalAudience)
	require.NoError(t, err)
	assert.Equal(t, s.ID, got.ID)
	assert.Equal(t, s.Public, got.Public)
	assert.Equal(t, s.Endpoint, got.Endpoint)

	// A knock minted from the loaded file verifies against the running session's key.
	tok, err := got.Mint(MintOptions{Function: "Orders", TTL: time.Minute})
	require.NoError(t, err)
	v, err := s.Verifier("Orders", "orders-fn")
	require.NoError(t, err)
	c, err := v.Verify(tok, knock.Request{})
	require.NoError(t, err)
	assert.Equal(t, s.ID, c.Issuer)
	assert.Equal(t, "local/Orders", c.Audience)
	assert.WithinDuration(t, time.Now().Add(time.Minute), c.Expires, 2*time.Second)

	// Bound to another function: refused.
	other, err := s.Verifier("Payments")
	require.NoError(t, err)
	_, err = other.Verify(tok, knock.Request{})
	assert.ErrorIs(t, err, knock.ErrAudience)

	require.NoError(t, s.Remove())
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "the file is removed when the session ends")
	_, err = Load(LocalAudience)
	assert.ErrorIs(t, err, ErrNoSession)
}

func TestLoadWithoutSession(t *testing.T) {
	cacheDir(t)
	_, err := Load("orders")
	assert.ErrorIs(t, err, ErrNoSession)
}

func TestLoadRefusesLoosePermissions(t *testing.T) {
	cacheDir(t)
	s, err := New("orders")
	require.NoError(t, err)
	require.NoError(t, s.Save())
	t.Cleanup(func() { _ = s.Remove() })
	path, err := Path("orders")
	require.NoError(t, err)

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = Load("orders")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "0644")
	require.NoError(t, os.Chmod(path, 0o600))

	require.NoError(t, os.Chmod(filepath.Dir(path), 0o755))
	_, err = Load("orders")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "0755")
	require.NoError(t, os.Chmod(filepath.Dir(path), 0o700))

	_, err = Load("orders")
	require.NoError(t, err)
}

func TestStaleFileIsReplacedLiveOneRefused(t *testing.T) {
	cacheDir(t)
	path, err := Path("orders")
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))

	// A process that has ended.
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	dead := cmd.ProcessState.Pid()
	write := func(pid int) {
		b, err := json.Marshal(file{Audience: "orders", Session: "s-old", Seed: make([]byte, 32), PID: pid})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(path, b, 0o600))
	}
	write(dead)
	_, err = Load("orders")
	assert.ErrorIs(t, err, ErrNoSession, "a crashed session's file is no session")

	s, err := New("orders")
	require.NoError(t, err)
	require.NoError(t, s.Save(), "a stale file is replaced")
	got, err := Load("orders")
	require.NoError(t, err)
	assert.Equal(t, s.ID, got.ID)
	require.NoError(t, s.Remove())

	// A live process (the parent of this test) owns the audience: refused, and its file is kept.
	write(os.Getppid())
	s2, err := New("orders")
	require.NoError(t, err)
	err = s2.Save()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another selective session")
	_, err = os.Stat(path)
	assert.NoError(t, err)
}

func TestAudienceMustBeAName(t *testing.T) {
	for _, a := range []string{"", "..", "a/b", "a b"} {
		_, err := New(a)
		assert.Error(t, err, "%q", a)
	}
}

func TestMintRefusesLongLifetime(t *testing.T) {
	s, err := New("orders")
	require.NoError(t, err)
	_, err = s.Mint(MintOptions{TTL: 13 * time.Hour})
	assert.ErrorIs(t, err, knock.ErrLifetime)
	tok, err := s.Mint(MintOptions{Route: "POST /orders/*"})
	require.NoError(t, err)
	v, err := s.Verifier()
	require.NoError(t, err)
	_, err = v.Verify(tok, knock.Request{HTTP: true, Method: "GET", Path: "/orders/1"})
	assert.ErrorIs(t, err, knock.ErrRoute)
	_, err = v.Verify(tok, knock.Request{HTTP: true, Method: "POST", Path: "/orders/1"})
	assert.NoError(t, err)
}

func TestDirEnv(t *testing.T) {
	cacheDir(t)
	dir := filepath.Join(t.TempDir(), "knock")
	t.Setenv(DirEnv, dir)
	s, err := New(LocalAudience)
	require.NoError(t, err)
	require.NoError(t, s.Save())
	fi, err := os.Stat(filepath.Join(dir, "local.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.NoError(t, s.Remove())
}

func TestSessionFileKeepsTheFunctions(t *testing.T) {
	t.Setenv(DirEnv, filepath.Join(t.TempDir(), "knock"))
	s, err := New("orders")
	require.NoError(t, err)
	s.Functions = []Function{{LogicalID: "CreateOrder", Name: "orders-CreateOrder-1A2B"}, {LogicalID: "Api/ListOrders", Name: "orders-ListOrders-3C4D"}}
	require.NoError(t, s.Save())
	t.Cleanup(func() { _ = s.Remove() })

	l, err := Load("orders")
	require.NoError(t, err)
	assert.Equal(t, s.Functions, l.Functions)
	for _, name := range []string{"CreateOrder", "orders-CreateOrder-1A2B", "Api/ListOrders", "orders-ListOrders-3C4D"} {
		assert.NoError(t, l.CheckFunction(name), name)
	}
	err = l.CheckFunction("CreateOrders")
	assert.EqualError(t, err, `"CreateOrders" is not a function of this session (it debugs CreateOrder, Api/ListOrders)`)

	// The ready-to-run lines invoke a function by the name Lambda knows, whichever name --function gave.
	assert.Equal(t, "orders-CreateOrder-1A2B", l.InvokeName("CreateOrder"))
	assert.Equal(t, "orders-CreateOrder-1A2B", l.InvokeName("orders-CreateOrder-1A2B"))
	assert.Equal(t, "orders-ListOrders-3C4D", l.InvokeName("Api/ListOrders"))

	l.Functions = nil // a file from before the functions were saved: nothing to check against
	assert.NoError(t, l.CheckFunction("Anything"))
	assert.Equal(t, "CreateOrder", l.InvokeName("CreateOrder"))
}
