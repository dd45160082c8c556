package devside_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/template"
	"github.com/plldb/plldb/testfixtures/apps"
	"github.com/plldb/plldb/testfixtures/pyenv"
)

func helloFunction(t *testing.T) (*template.Template, template.Function) {
	t.Helper()
	tpl, err := template.Load(filepath.Join(apps.Dir("hello"), "template.yaml"))
	require.NoError(t, err)
	fn, ok := tpl.Function("HelloFunction")
	require.True(t, ok)
	return tpl, *fn
}

func TestStartServesFunctionsByLogicalIDAndName(t *testing.T) {
	tpl, fn := helloFunction(t)
	s, err := devside.Start(context.Background(), devside.Config{
		Functions: []template.Function{fn}, TemplateDir: filepath.Dir(tpl.Path), Python: pyenv.Python(t),
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	defer func() { assert.NoError(t, s.Close()) }()
	require.Len(t, s.Functions(), 1)
	for _, name := range []string{fn.LogicalID, fn.Name} {
		got, ok := s.Lookup(name)
		require.True(t, ok, name)
		assert.Equal(t, fn.LogicalID, got.LogicalID)
		assert.NotNil(t, got.Exec)
	}
	_, ok := s.Lookup("NoSuchFunction")
	assert.False(t, ok)
	s.Disconnect() // without a link: a no-op that must not block
}

func TestStartNamesTheFunctionWhoseInterpreterIsMissing(t *testing.T) {
	tpl, fn := helloFunction(t)
	_, err := devside.Start(context.Background(), devside.Config{
		Functions: []template.Function{fn}, TemplateDir: filepath.Dir(tpl.Path), Python: "/nonexistent/python3",
		Logger: slog.New(slog.DiscardHandler),
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HelloFunction")
}
