// Package wrapper holds the plldb exec wrapper script, embedded so the layer builder ships the exact file
// kept in this folder.
package wrapper

import _ "embed"

// Script is the POSIX sh exec wrapper, installed as /opt/plldb/wrapper.
//
//go:embed wrapper
var Script []byte
