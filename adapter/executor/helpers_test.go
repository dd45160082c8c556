package executor

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plldb/plldb/testfixtures/pyenv"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine running: every executor is closed by its test, and
// whatever it started must be gone shortly after.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// writeFiles creates files (relative path → content) under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

// logSink collects LogLines.
type logSink struct {
	mu    sync.Mutex
	lines []LogLine
}

func (s *logSink) add(l LogLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, l)
}

// text joins the output of one request id ("" for output outside invocations) on one stream ("" for all).
func (s *logSink) text(rid, stream string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.lines {
		if l.RequestID == rid && (stream == "" || l.Stream == stream) {
			b.WriteString(l.Text)
		}
	}
	return b.String()
}

// start runs an executor for the handler files and closes it when the test ends.
func start(t testing.TB, spec Spec, files map[string]string) (*Executor, *logSink) {
	t.Helper()
	if spec.CodeDir == "" {
		spec.CodeDir = t.TempDir()
	}
	writeFiles(t, spec.CodeDir, files)
	if spec.Python == "" {
		spec.Python = pyenv.Python(t)
	}
	if spec.LogicalID == "" {
		spec.LogicalID = "Fn"
	}
	if spec.Handler == "" {
		spec.Handler = "app.handler"
	}
	sink := &logSink{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := Start(ctx, spec, sink.add)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })
	return e, sink
}

func invoke(t testing.TB, e *Executor, inv Invocation) Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := e.Invoke(ctx, inv)
	require.NoError(t, err)
	return out
}

func payload(t testing.TB, out Outcome) map[string]any {
	t.Helper()
	require.Nil(t, out.Err, "function failed: %+v", out.Err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(out.Payload, &m), "payload %s", out.Payload)
	return m
}

// recordHandler is a slog.Handler that remembers messages.
type recordHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, r.Message)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }
func (h *recordHandler) has(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

func slogNew(h slog.Handler) *slog.Logger { return slog.New(h) }
