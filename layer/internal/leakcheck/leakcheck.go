// Package leakcheck finds goroutines a test package left running: those executing this module's code or
// holding HTTP connections open. TestMain calls Check after m.Run.
package leakcheck

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// suspects mark a goroutine as ours to clean up.
var suspects = []string{"github.com/plldb/plldb/", "net/http.(*persistConn)", "net/http.(*conn).serve"}

// Check waits up to timeout for leftover goroutines to end and returns an error listing those that did not.
func Check(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		leaked := leftovers()
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d goroutine(s) leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func leftovers() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // the calling goroutine comes first
			continue
		}
		for _, s := range suspects {
			if strings.Contains(g, s) && !strings.Contains(g, "leakcheck.") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}
