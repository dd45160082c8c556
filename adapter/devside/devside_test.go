package devside_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/adapter/devside"
	"github.com/plldb/plldb/adapter/executor"
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

// A function's LoggingConfig reaches awslambdaric's logging set-up as Lambda passes it: JSON records, the
// application log level, and the log group in the context.
func TestLoggingConfigReachesTheRuntime(t *testing.T) {
	tpl, fn := helloFunction(t)
	fn.CodeDir = filepath.Join(pyenv.RepoRoot(), "testfixtures", "rie", "parity")
	fn.Handler = "parity.handler"
	fn.Logging = template.LoggingConfig{LogFormat: "JSON", ApplicationLogLevel: "DEBUG", SystemLogLevel: "WARN", LogGroup: "/custom/group"}
	var mu sync.Mutex
	var logs strings.Builder
	s, err := devside.Start(context.Background(), devside.Config{
		Functions: []template.Function{fn}, TemplateDir: filepath.Dir(tpl.Path), Python: pyenv.Python(t),
		Logger: slog.New(slog.DiscardHandler),
		Hooks: devside.Hooks{OnLog: func(l executor.LogLine) {
			mu.Lock()
			defer mu.Unlock()
			logs.WriteString(l.Text)
		}},
	})
	require.NoError(t, err)
	defer func() { assert.NoError(t, s.Close()) }()
	got, ok := s.Lookup(fn.LogicalID)
	require.True(t, ok)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := got.Exec.Invoke(ctx, executor.Invocation{Event: []byte(`{"case":"process"}`)})
	require.NoError(t, err)
	require.Nil(t, out.Err)
	var proc struct {
		RootHandlers []string `json:"root_handlers"`
		RootLevel    int      `json:"root_level"`
	}
	require.NoError(t, json.Unmarshal(out.Payload, &proc))
	assert.Equal(t, []string{"LambdaLoggerHandlerWithFrameType"}, proc.RootHandlers)
	assert.Equal(t, 10, proc.RootLevel, "DEBUG")

	out, err = got.Exec.Invoke(ctx, executor.Invocation{Event: []byte(`{"case":"logs"}`)})
	require.NoError(t, err)
	require.Nil(t, out.Err)
	out, err = got.Exec.Invoke(ctx, executor.Invocation{Event: []byte(`{"case":"context"}`)})
	require.NoError(t, err)
	assert.Contains(t, string(out.Payload), `"log_group_name": "/custom/group"`)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, logs.String(), `"level": "DEBUG", "message": "logging: debug", "logger": "root", "requestId": "`)
}
