package freeport_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/plldb/plldb/testfixtures/freeport"
)

func TestPickIsFreeAndBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		port, err := freeport.Pick()
		require.NoError(t, err)
		assert.GreaterOrEqual(t, port, 10000)
		assert.Less(t, port, 32768, "below the ephemeral range outgoing connections use")
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
