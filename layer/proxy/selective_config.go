package proxy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/plldb/plldb/bridge/knock"
	"github.com/plldb/plldb/bridge/selenv"
)

// SelectiveConfig is selective mode (issue 14): every invocation runs the deployed code in the child runtime,
// byte for byte as in pass-through, except those with a valid knock, which go to the knock's session.
type SelectiveConfig struct {
	// Verifier checks knocks; nil when the selective settings were wrong (Broken says why): every knock found is
	// then removed and refused, and every invocation runs the deployed code.
	Verifier *knock.Verifier
	// Sessions are the session ids with a key, sorted (for logs; ids are not secret).
	Sessions []string
	// Links are the sessions knocked invocations can go to, one relay link each (PLLDB_SESSIONS, and
	// PLLDB_SESSION for an older attach). A valid knock of a session without a link runs the deployed code.
	Links []*SessionConfig
	// Broken says why the settings could not be used; nil when they could.
	Broken error
}

// ErrSelectiveConfig marks a problem with the selective settings. ConfigFromEnv then returns a Config that runs
// every invocation as the deployed code, with knocks removed, and no session at all.
var ErrSelectiveConfig = errors.New("plldb selective settings")

// selectiveWanted tells whether the environment asks for selective mode in any way. Any PLLDB_KNOCK_* variable
// or PLLDB_SESSIONS counts, so that a typo in PLLDB_SELECTIVE can never turn a selective attach into one that sends every
// invocation to a developer.
func selectiveWanted(env map[string]string) bool {
	if v, ok := env[selenv.EnvSelective]; ok && v != "" {
		if b, err := strconv.ParseBool(v); err != nil || b {
			return true
		}
	}
	return env[selenv.EnvKnockKeys] != "" || env[selenv.EnvKnockStack] != "" || env[selenv.EnvSessions] != ""
}

// selectiveFromEnv builds the selective settings from env. Errors never contain key material.
func selectiveFromEnv(env map[string]string) (*knock.Config, error) {
	switch v := env[selenv.EnvSelective]; v {
	case "":
		return nil, fmt.Errorf("%s is not set but %s, %s or %s is", selenv.EnvSelective, selenv.EnvKnockKeys, selenv.EnvKnockStack, selenv.EnvSessions)
	default:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s %q is not a boolean (true/false/1/0)", selenv.EnvSelective, v)
		}
		if !b {
			return nil, fmt.Errorf("%s is false but %s, %s or %s is set", selenv.EnvSelective, selenv.EnvKnockKeys, selenv.EnvKnockStack, selenv.EnvSessions)
		}
	}
	keys, err := selenv.ParseKnockKeys(env[selenv.EnvKnockKeys])
	if err != nil {
		return nil, err
	}
	stack := env[selenv.EnvKnockStack]
	if stack == "" {
		return nil, fmt.Errorf("%s is not set", selenv.EnvKnockStack)
	}
	if strings.Contains(stack, "/") {
		return nil, fmt.Errorf("%s is not a stack name", selenv.EnvKnockStack)
	}
	// The function answers to knocks for its stack and for itself by logical id or physical name.
	c := &knock.Config{Keys: keys, Audiences: knock.Audiences(stack, env["PLLDB_LOGICAL_ID"], env["AWS_LAMBDA_FUNCTION_NAME"])}
	return c, nil
}

// Sessions returns every session configuration of c, the one of session mode or the links of selective mode,
// for the caller to set their Dial.
func (c *Config) Sessions() []*SessionConfig {
	var out []*SessionConfig
	if c.Session != nil {
		out = append(out, c.Session)
	}
	if c.Selective != nil {
		out = append(out, c.Selective.Links...)
	}
	return out
}
