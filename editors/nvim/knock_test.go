package nvim

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

// TestNvimKnock runs testdata/knock.lua in real Neovim with real nvim-dap: :PlldbKnock without a session says
// how to start one; in a selective local launch it asks for the function, puts `X-Plldb-Knock: <token>` in the
// register and says so without the token; `:PlldbKnock * 5m` and require('plldb').knock narrow and format the
// knock; an invocation carrying the knock stops at the breakpoint. Here each knock is verified with the session's
// public key (from the session file the launch wrote) for the audience it was asked for.
func TestNvimKnock(t *testing.T) {
	nvimDap := findNvimDap(t)
	python := pyenv.Python(t)
	nvim := findNvim(t)
	plldb := plldbBinary(t)
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello")
	copyDir(t, apps.Dir("hello"), hello)
	hello, err := filepath.EvalSymlinks(hello)
	require.NoError(t, err)
	app := filepath.Join(hello, "src", "app.py")
	line, err := apps.BreakpointLine(app, "handler")
	require.NoError(t, err)

	knockDir := filepath.Join(dir, "knock")
	data, xdg := runNvim(t, nvim, nvimDap, "knock.lua", dir, hello, "knock",
		"PLLDB_NVIM_PLLDB="+plldb,
		"PLLDB_NVIM_APP="+app,
		"PLLDB_NVIM_BP_LINE="+strconv.Itoa(line),
		"PLLDB_NVIM_PYTHON="+python,
		"PLLDB_KNOCK_DIR="+knockDir)
	var res struct {
		Steps         list[step] `json:"steps"`
		Notifications list[struct {
			Msg      string `json:"msg"`
			Level    int    `json:"level"`
			Expected bool   `json:"expected"`
		}] `json:"notifications"`
		Knocks list[struct {
			Token string `json:"token"`
			Want  string `json:"want"`
			TTL   int    `json:"ttl_s"`
		}] `json:"knocks"`
		SessionFile string `json:"session_file"`
	}
	require.NoError(t, json.Unmarshal(data, &res), "%s", data)
	want := []string{"no session", "selective launch", ":PlldbKnock asks for the function and fills the register",
		":PlldbKnock * 5m and the Lua API", "the knock stops the invocation"}
	var names []string
	for _, s := range res.Steps {
		names = append(names, s.Name)
		if !assert.True(t, s.OK, "step %q failed after %d ms:\n%s", s.Name, s.MS, s.Error) {
			for _, n := range res.Notifications {
				t.Logf("vim.notify(level %d): %s", n.Level, n.Msg)
			}
			dumpLogs(t, xdg)
		}
	}
	require.Equal(t, want, names)
	for _, n := range res.Notifications {
		if n.Level >= 4 && !n.Expected { // vim.log.levels.ERROR
			t.Errorf("nvim-dap or plldb showed an error: %s", n.Msg)
		}
	}

	// The knocks verify with the key the launch saved for `plldb knock --local`.
	var file struct {
		Session string `json:"session"`
		Seed    []byte `json:"privateKeySeed"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.SessionFile), &file))
	require.Len(t, file.Seed, ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(file.Seed).Public().(ed25519.PublicKey)
	require.Len(t, res.Knocks, 2)
	for _, k := range res.Knocks {
		fn := k.Want[strings.LastIndexByte(k.Want, '/')+1:]
		v, err := knock.NewVerifier(knock.Config{Keys: map[string]ed25519.PublicKey{file.Session: pub}, Audiences: knock.Audiences("local", fn)})
		require.NoError(t, err)
		c, err := v.Verify(k.Token, knock.Request{})
		require.NoError(t, err, k.Want)
		assert.Equal(t, k.Want, c.Audience)
		assert.Equal(t, file.Session, c.Issuer)
		if k.TTL > 0 {
			assert.WithinDuration(t, time.Now().Add(time.Duration(k.TTL)*time.Second), c.Expires, time.Minute)
		}
		other, err := knock.NewVerifier(knock.Config{Keys: map[string]ed25519.PublicKey{file.Session: pub}, Audiences: knock.Audiences("local", "FailingFunction")})
		require.NoError(t, err)
		_, err = other.Verify(k.Token, knock.Request{})
		assert.ErrorIs(t, err, knock.ErrAudience, "bound to %s", k.Want)
	}
	_, err = os.Stat(filepath.Join(knockDir, "local.json"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the session file goes with the session")
}
