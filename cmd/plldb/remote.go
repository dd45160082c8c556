package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/plldb/plldb/adapter/dap"
)

// allowRemoteUsage is the --allow-remote help of every command that listens.
const allowRemoteUsage = "accept a non-loopback listening address (other machines can connect); every client must then present the token printed on stderr"

func registerAllowRemote(fs *flag.FlagSet, p *bool) {
	fs.BoolVar(p, "allow-remote", false, allowRemoteUsage)
}

// newToken is 256 random bits, URL-safe base64: what a remote client presents.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// warnRemote tells the developer, once and on stderr (never in a log file or on a DAP stdout), that what they
// started is reachable from elsewhere and what the token is.
func warnRemote(stderr io.Writer, what, addr, token, use string) {
	// One write: the warning is never seen, or interleaved with log lines, in part.
	fmt.Fprintf(stderr, "WARNING: --allow-remote: the %s at %s accepts connections from other machines: whoever has the token can run code on this machine as you, and the connection is not encrypted (an SSH tunnel to a loopback port is safer).\n"+
		"WARNING: token (shown once): %s\nWARNING: %s\n", what, addr, token, use)
}

// listenDAP opens the DAP listener of `plldb dap --listen` and `plldb attach --listen`: loopback only, unless
// allowRemote, which requires a token of every session.
func listenDAP(addr string, allowRemote bool, opts dap.Options, stderr io.Writer) (*dap.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("--listen %q: want HOST:PORT", addr)
	}
	if !allowRemote {
		return dap.Listen(addr, opts)
	}
	token := newToken()
	l, err := dap.ListenRemote(addr, token, opts)
	if err != nil {
		return nil, err
	}
	warnRemote(stderr, "DAP server", l.Addr().String(), token,
		`DAP clients must send it as the "token" attribute of their launch (or attach) request: "token": "<token>"`)
	return l, nil
}
