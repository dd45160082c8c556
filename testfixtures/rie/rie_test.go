package rie_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/pyenv"
	"github.com/plldb/plldb/testfixtures/rie"
)

func handlers() string { return filepath.Join(pyenv.RepoRoot(), "testfixtures", "rie", "handlers") }

func TestEmulatorRunsAHandler(t *testing.T) {
	e := rie.Start(t, rie.Options{Dir: handlers(), Handler: "cases.handler"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e.Invoke(ctx, []byte(`{"case":"result","value":{"a":[1,"x"]}}`), nil)
	require.NoError(t, err, "output:\n%s", e.Output)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, `{"a": [1, "x"]}`, string(r.Body), "awslambdaric's json.dumps")
	pid, err := e.FindProcess("python")
	require.NoError(t, err, "the runtime runs in the emulator's process group")
	assert.Positive(t, pid)
}

func TestBinaryIsCached(t *testing.T) {
	a := rie.Binary(t)
	st, err := os.Stat(a)
	require.NoError(t, err)
	b := rie.Binary(t)
	assert.Equal(t, a, b)
	st2, err := os.Stat(b)
	require.NoError(t, err)
	assert.Equal(t, st.ModTime(), st2.ModTime(), "not rebuilt")
	stamp, err := os.ReadFile(a + ".src")
	require.NoError(t, err)
	assert.Len(t, string(stamp), 65, "sha256 of the source, and a newline")
}

func TestCommonHidesOnlyIdsAndTimes(t *testing.T) {
	in := "[ERROR]\t2026-12-02T06:07:29.547Z\t9b952d0f-5087-455f-b42a-7510f826e2d2\tboom [1796191649896] 42"
	assert.Equal(t, "[ERROR]\t<time>\t<uuid>\tboom [<ms>] 42", string(rie.Common([]byte(in))))
}

func TestJSONPathsKeepsOtherBodiesByteForByte(t *testing.T) {
	ok := func(any) bool { return true }
	body := []byte(`{"b": 1, "a": 2}`)
	assert.Equal(t, body, rie.JSONPaths(body, map[string]func(any) bool{"env.X": ok}))
	assert.JSONEq(t, `{"env":{"X":"<allowed>","Y":1}}`, string(rie.JSONPaths([]byte(`{"env":{"X":"v","Y":1}}`), map[string]func(any) bool{"env.X": ok})))
	assert.JSONEq(t, `{"env":{"X":"<not allowed: v>"}}`, string(rie.JSONPaths([]byte(`{"env":{"X":"v"}}`), map[string]func(any) bool{"env.X": func(any) bool { return false }})))
}

func TestCompareReportsALogDifferenceAsADiff(t *testing.T) {
	c := rie.Case{Name: "c", Events: []rie.Event{{Name: "e"}}}
	want := rie.Observation{Way: "a", Replies: []rie.Reply{{Status: 200, Body: []byte("x")}}, Logs: "one\ntwo\nthree"}
	got := rie.Observation{Way: "b", Replies: []rie.Reply{{Status: 200, Body: []byte("x")}}, Logs: "one\nextra\ntwo\nthree"}
	ft := &fakeT{TB: t}
	rie.Compare(ft, c, want, got, rie.Normalizer{})
	require.Len(t, ft.errors, 1)
	assert.Contains(t, ft.errors[0], "+2: extra")
	assert.NotContains(t, ft.errors[0], "two\n", "equal lines are not listed")
}

// fakeT records Errorf calls instead of failing.
type fakeT struct {
	testing.TB
	errors []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
