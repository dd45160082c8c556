package devside

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/plldb/plldb/adapter/executor"
	"github.com/plldb/plldb/bridge/wire"
)

// resolveTimeout bounds the first resolution of the developer's credentials at Start: a chain that ends at an
// unreachable instance metadata service must not hold up the session, which starts without credentials instead.
const resolveTimeout = 15 * time.Second

// developerCredentials are the developer's own AWS credentials, handed to every invocation. They come from a
// credentials cache, so an invocation costs nothing while they are valid, and the first invocation after they
// expire refreshes them (SSO, assumed roles, credential_process). They are never logged: executor.Credentials
// prints redacted, and errors from the SDK name the source, not the values.
type developerCredentials struct {
	cache *aws.CredentialsCache
	log   *slog.Logger
	// failing is set while a refresh fails, so that a failure is logged once rather than per invocation.
	failing atomic.Bool
}

// resolveDeveloper resolves p once. Credentials that do not resolve are not an error: handlers then run with
// none, which is logged once, and nil is returned.
func resolveDeveloper(ctx context.Context, p aws.CredentialsProvider, log *slog.Logger) *developerCredentials {
	cache, ok := p.(*aws.CredentialsCache)
	if !ok {
		cache = aws.NewCredentialsCache(p)
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	c, err := cache.Retrieve(ctx)
	if err == nil && (c.AccessKeyID == "" || c.SecretAccessKey == "") {
		err = errors.New("the credentials resolved have no access key id or secret access key")
	}
	if err != nil {
		log.Info("no AWS credentials resolved from your configuration (environment, --profile, shared config files, SSO): handlers will have none (no AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or AWS_SESSION_TOKEN)", "err", err)
		return nil
	}
	log.Info("handlers get your AWS credentials", "source", c.Source, "expires", expiry(c))
	return &developerCredentials{cache: cache, log: log}
}

func expiry(c aws.Credentials) string {
	if !c.CanExpire {
		return "never"
	}
	return c.Expires.UTC().Format(time.RFC3339)
}

// get returns the credentials for one invocation, refreshing them when they have expired; nil while they cannot
// be refreshed (the handler then has none, rather than expired ones).
func (d *developerCredentials) get(ctx context.Context) *executor.Credentials {
	c, err := d.cache.Retrieve(ctx)
	if err != nil {
		if !d.failing.Swap(true) {
			d.log.Warn("your AWS credentials expired and could not be refreshed: handlers run without credentials until they can be (for SSO, run aws sso login)", "err", err)
		}
		return nil
	}
	if d.failing.Swap(false) {
		d.log.Info("your AWS credentials were refreshed; handlers have them again", "expires", expiry(c))
	}
	return &executor.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
}

// Credentials are the credentials a handler runs with when no sandbox sent any: the developer's (refreshed when
// expired) when the side was configured with them, else nil. plldb local's selective mode runs unknocked
// invocations on an executor of its own and gives them these, as the relayed ones get them.
func (s *Side) Credentials(ctx context.Context) *executor.Credentials {
	return s.credentialsFor(ctx, nil)
}

// credentialsFor chooses an invocation's credentials: the developer's when the session was configured with
// them, else the ones its sandbox sent (the function's role), else none.
func (s *Side) credentialsFor(ctx context.Context, sent *wire.Credentials) *executor.Credentials {
	if s.cfg.DeveloperCredentials != nil {
		if s.dev == nil {
			return nil
		}
		return s.dev.get(ctx)
	}
	if !sent.Valid() {
		return nil
	}
	return &executor.Credentials{AccessKeyID: sent.AccessKeyID, SecretAccessKey: sent.SecretAccessKey, SessionToken: sent.SessionToken}
}
