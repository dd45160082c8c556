package executor

import (
	"fmt"
	"log/slog"
)

// Credentials are the AWS credentials a handler gets for one invocation, as Lambda gives every handler its
// execution role's: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. They are secrets, so every way
// Go prints a value (fmt's verbs, slog) shows "[redacted]" instead; only the JSON-RPC request to the sandbox carries
// them, over its private pipe.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

const redacted = "[redacted]"

func (Credentials) String() string       { return redacted }
func (Credentials) GoString() string     { return redacted }
func (Credentials) LogValue() slog.Value { return slog.StringValue(redacted) }

// Format covers the verbs String does not (%x, %q, %+v of a pointer …), so no verb prints a field.
func (Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// credentialVars are the variables that carry credentials. The developer's shell may hold them; a sandbox never
// inherits them (buildEnv), so that a handler has exactly the credentials plldb gives it, or none, and never
// silently the shell's.
var credentialVars = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION"}

// wireCredentials is Credentials as the invoke request carries them to executor.py.
type wireCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken,omitempty"`
}

func (w *wireCredentials) String() string   { return redacted }
func (w *wireCredentials) GoString() string { return redacted }
