package relay

import (
	"crypto/sha256"
	"encoding/hex"
)

// LogRef is how logs name a connection: "c" and the first 8 hex digits of the SHA-256 of its id. A connection
// id is the address the @connections API posts to, so logs above DEBUG never carry one; the ref still lets a
// reader follow one connection through the gateway's and the relay's lines (both use LogRef), and cannot be
// turned back into the id (that would take guessing the id's 88 random bits).
func LogRef(connectionID string) string {
	if connectionID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(connectionID))
	return "c" + hex.EncodeToString(sum[:4])
}
