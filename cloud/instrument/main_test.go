package instrument_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine running. Idle keep-alive connections of the SDK's
// shared HTTP transport to moto, and the output copier of the moto server that lives as long as the test
// binary, are not ours to stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("os/exec.(*Cmd).Start.func2"),
	)
}
