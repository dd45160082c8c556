package logbuf_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/plldb/plldb/testfixtures/logbuf"
)

func TestBufferTakesConcurrentWriters(t *testing.T) {
	var b logbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("ab"))
				_, _ = b.WriteString("c")
				_ = b.String()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 8*100*3, len(b.String()))
	assert.Equal(t, 800, strings.Count(b.String(), "c"))
}

// recorder is a testing.TB that records what the test would log and whether it failed.
type recorder struct {
	testing.TB
	failed   bool
	logs     []string
	cleanups []func()
}

func (r *recorder) Helper()                 {}
func (r *recorder) Failed() bool            { return r.failed }
func (r *recorder) Cleanup(f func())        { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Logf(f string, a ...any) { r.logs = append(r.logs, fmt.Sprintf(f, a...)) }
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestLoggerShowsRecordsOnlyWhenTheTestFails(t *testing.T) {
	for _, failed := range []bool{false, true} {
		r := &recorder{TB: t}
		log := logbuf.Logger(r, slog.LevelWarn)
		log.Info("not kept")
		log.Warn("ticket denied", "reason", "expired")
		r.failed = failed
		r.end()
		if !failed {
			assert.Empty(t, r.logs, "a passing test prints nothing")
			continue
		}
		if assert.Len(t, r.logs, 1) {
			assert.Contains(t, r.logs[0], `msg="ticket denied" reason=expired`)
			assert.NotContains(t, r.logs[0], "not kept", "records below the level are dropped")
		}
	}
}
