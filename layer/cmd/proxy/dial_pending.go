//go:build !plldb_wsclient

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/plldb/plldb/layer/proxy"
)

// relayDialer stands in until bridge/wsclient and bridge/ticket are on main; dial_wsclient.go holds the real
// wiring (build tag plldb_wsclient). Without it a configured session is disabled and the proxy passes through.
func relayDialer(_ *proxy.SessionConfig, _ *slog.Logger) (func(context.Context) (proxy.Link, error), error) {
	return nil, errors.New("this proxy was built without the relay client (build tag plldb_wsclient)")
}
