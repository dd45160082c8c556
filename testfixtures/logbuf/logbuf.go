// Package logbuf collects what loggers and processes write while a test runs: a Buffer safe for writers on
// other goroutines and the test's reads, and a Logger that keeps a component's records out of a passing test's
// output and shows them when the test fails, so that a failure seen once in CI says why.
package logbuf

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// Buffer is a bytes.Buffer that writers on other goroutines and the test may use at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// WriteString appends s.
func (l *Buffer) WriteString(s string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.WriteString(s)
}

// String is everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a text logger of records at level and above that prints them through t.Log when the test
// has failed by its end, and drops them otherwise.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	t.Helper()
	buf := &Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			if s := buf.String(); s != "" {
				t.Logf("logs (%s and above) of the failed test:\n%s", level, s)
			}
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level}))
}
