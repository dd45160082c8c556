// Package restorer is the relay's expiry path (relay.Restorer): it puts back the functions of a session that
// ended without a detach, with the instrumenter on the DynamoDB claim store.
package restorer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// SessionTag is the tag attach puts on functions (stack.SessionTag; the relay role may only change tagged
// functions). Repeated here so that the relay Lambda does not link the stack installer.
const SessionTag = "plldb:session"

// Restorer implements relay.Restorer with the session's snapshots.
type Restorer struct {
	Instrumenter *instrument.Instrumenter
	// Lambda, if set, removes the session tag from restored functions.
	Lambda *lambda.Client
	Logger *slog.Logger
}

var _ relay.Restorer = (*Restorer)(nil)

// New returns a Restorer using the Lambda API of cfg and the claims in st.
func New(cfg aws.Config, st *store.Store, log *slog.Logger) *Restorer {
	if log == nil {
		log = slog.Default()
	}
	client := lambda.NewFromConfig(cfg)
	return &Restorer{
		Instrumenter: &instrument.Instrumenter{Lambda: client, Claims: st, Logger: log},
		Lambda:       client,
		Logger:       log,
	}
}

// RestoreSession puts back every function the session still holds. Functions someone else changed since are
// reported (logged) and left alone, as Instrumenter.Restore does; only failures make it return an error.
func (r *Restorer) RestoreSession(ctx context.Context, session string) error {
	results, err := r.Instrumenter.Restore(ctx, session)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, res := range results {
		switch res.Outcome {
		case instrument.Restored:
			r.Logger.InfoContext(ctx, "restored after the session ended", "session", session, "function", res.FunctionName)
			if r.Lambda != nil {
				if _, err := r.Lambda.UntagResource(ctx, &lambda.UntagResourceInput{
					Resource: aws.String(res.FunctionARN), TagKeys: []string{SessionTag},
				}); err != nil {
					r.Logger.WarnContext(ctx, "remove the session tag", "function", res.FunctionName, "err", err.Error())
				}
			}
		case instrument.Failed:
			errs = append(errs, fmt.Errorf("restore %s: %w", res.FunctionName, res.Err))
		default:
			r.Logger.WarnContext(ctx, "not restored after the session ended", "session", session, "function", res.FunctionName,
				"outcome", res.Outcome, "message", res.Message)
		}
	}
	return errors.Join(errs...)
}
