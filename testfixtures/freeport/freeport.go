// Package freeport picks loopback ports for test servers that another process binds a moment later (moto, the
// Runtime Interface Emulator): the port must stay free between the pick and that bind.
//
// A port the kernel hands out for listen(0) lies in the ephemeral range, which every outgoing connection on the
// machine also draws its local port from, so on a busy machine a connection can take it before the server
// binds. Ports below that range are taken only by listeners, so Pick chooses there.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the bottom of the range Pick draws from: above the well-known and most registered service ports.
const lowest = 10000

// Pick returns a loopback port that is free now and outside the ephemeral range.
func Pick() (int, error) {
	top := ephemeralLow()
	for range 100 {
		port := lowest + rand.IntN(top-lowest)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		if err := ln.Close(); err != nil {
			return 0, fmt.Errorf("free port %d: %w", port, err)
		}
		return port, nil
	}
	return 0, fmt.Errorf("no free loopback port between %d and %d after 100 tries", lowest, top)
}

// Addr is Pick as a 127.0.0.1:port address.
func Addr() (string, error) {
	port, err := Pick()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// ephemeralLow is the first port of Linux's ephemeral range, or the usual 32768 where it cannot be read.
func ephemeralLow() int {
	const usual = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return usual
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return usual
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= lowest+1000 {
		return usual
	}
	return n
}
