package freeport_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/freeport"
)

// ephemeralLow is the first port of this machine's ephemeral range: 32768 on most Linux machines, but set
// higher on some (49152 is common), where Pick draws from the ports up to it.
func ephemeralLow(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	require.NotEmpty(t, f)
	n, err := strconv.Atoi(f[0])
	require.NoError(t, err)
	if n <= 11000 {
		return 32768 // too low to leave room below it: Pick falls back to the usual bound
	}
	return n
}

func TestPickIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	top := ephemeralLow(t)
	seen := map[int]bool{}
	for range 20 {
		port, err := freeport.Pick()
		require.NoError(t, err)
		assert.GreaterOrEqual(t, port, 10000)
		assert.Less(t, port, top, "below the ephemeral range outgoing connections use")
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err, "the port is free to bind")
		require.NoError(t, ln.Close())
		seen[port] = true
	}
	assert.Greater(t, len(seen), 10, "ports are spread, not one fixed port")
}

func TestPickSkipsPortsInUse(t *testing.T) {
	// Hold many ports of the range; Pick never returns one of them.
	held := map[int]bool{}
	for range 200 {
		port, err := freeport.Pick()
		require.NoError(t, err)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err)
		t.Cleanup(func() { _ = ln.Close() })
		held[port] = true
	}
	assert.Len(t, held, 200, "a held port is never handed out again")
}
