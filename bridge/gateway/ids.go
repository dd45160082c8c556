package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// newAWSID returns an id shaped like API Gateway's connection and request ids ("L0SM9cOFvHcCIhw="): standard
// base64 of 11 random bytes. Ids containing '/' are drawn again so an id is always one path segment of the
// management API's /@connections/{id} even for clients that do not escape it.
func newAWSID() string {
	var b [11]byte
	for {
		_, _ = rand.Read(b[:]) // never fails (crypto/rand panics internally if the OS source is broken)
		id := base64.StdEncoding.EncodeToString(b[:])
		if !strings.Contains(id, "/") {
			return id
		}
	}
}

// newSecret returns 256 random bits, URL-safe base64: a token that cannot be guessed.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

const apiIDAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newAPIID returns a 10-character id like API Gateway's API ids ("abcdef1234").
func newAPIID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = apiIDAlphabet[int(b[i])%len(apiIDAlphabet)]
	}
	return string(b[:])
}
