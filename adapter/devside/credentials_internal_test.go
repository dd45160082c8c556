package devside

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/plldb/plldb/testfixtures/logbuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// expiringProvider hands out numbered credentials that expire after ttl, or fails while fail is set.
type expiringProvider struct {
	n    atomic.Int32
	fail atomic.Bool
	ttl  time.Duration
}

func (p *expiringProvider) Retrieve(context.Context) (aws.Credentials, error) {
	if p.fail.Load() {
		return aws.Credentials{}, errors.New("the SSO session has expired")
	}
	n := p.n.Add(1)
	return aws.Credentials{AccessKeyID: fmt.Sprintf("AKIAEXPIRING%08d", n), SecretAccessKey: fmt.Sprintf("expiring-secret-%d", n),
		SessionToken: fmt.Sprintf("expiring-token-%d", n), CanExpire: true, Expires: time.Now().Add(p.ttl), Source: "test"}, nil
}

func TestDeveloperCredentialsRefreshAndSayFailuresOnce(t *testing.T) {
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := &expiringProvider{ttl: 300 * time.Millisecond}
	ctx := context.Background()

	d := resolveDeveloper(ctx, p, log)
	require.NotNil(t, d)
	c := d.get(ctx)
	require.NotNil(t, c)
	assert.Equal(t, "AKIAEXPIRING00000001", c.AccessKeyID, "resolved once at start, then cached")
	assert.Equal(t, "expiring-token-1", c.SessionToken)

	time.Sleep(350 * time.Millisecond)
	c = d.get(ctx)
	require.NotNil(t, c)
	assert.Equal(t, "AKIAEXPIRING00000002", c.AccessKeyID, "expired credentials are refreshed")

	p.fail.Store(true)
	time.Sleep(350 * time.Millisecond)
	assert.Nil(t, d.get(ctx), "expired and not refreshable: none, rather than expired ones")
	assert.Nil(t, d.get(ctx))
	assert.Equal(t, 1, strings.Count(logs.String(), "could not be refreshed"), "said once:\n%s", logs)

	p.fail.Store(false)
	c = d.get(ctx)
	require.NotNil(t, c)
	assert.Equal(t, "AKIAEXPIRING00000003", c.AccessKeyID)
	assert.Equal(t, 1, strings.Count(logs.String(), "were refreshed"))

	none := &expiringProvider{ttl: time.Hour}
	none.fail.Store(true)
	assert.Nil(t, resolveDeveloper(ctx, none, log), "nothing resolves: no credentials, no error")
	assert.Equal(t, 1, strings.Count(logs.String(), "handlers will have none"))

	for i := 1; i <= 3; i++ {
		for _, s := range []string{fmt.Sprintf("AKIAEXPIRING%08d", i), fmt.Sprintf("expiring-secret-%d", i), fmt.Sprintf("expiring-token-%d", i)} {
			assert.NotContains(t, logs.String(), s)
		}
	}
}
