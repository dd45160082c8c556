package instrument

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/store"
)

// Restorer is the relay's expiry path (relay.Restorer): it puts back the functions of a session that ended
// without a detach, from the snapshots in the claim store.
type Restorer struct {
	Instrumenter *Instrumenter
	Logger       *slog.Logger
}

var _ relay.Restorer = (*Restorer)(nil)

// NewRestorer returns a Restorer using the Lambda API of cfg and the claims in st.
func NewRestorer(cfg aws.Config, st *store.Store, log *slog.Logger) *Restorer {
	if log == nil {
		log = slog.Default()
	}
	return &Restorer{
		Instrumenter: &Instrumenter{Lambda: lambda.NewFromConfig(cfg), Claims: st, Logger: log},
		Logger:       log,
	}
}

// RestoreSession puts back every function the session still holds, as Instrumenter.Restore does: functions
// someone else changed since keep their changes (Merged) or, when plldb cannot tell its changes from theirs,
// are left alone with their claims (Conflict, logged); from a function other live selective sessions share it
// takes out only the session's entries (Left), the function being restored only when no live holder remains.
// Only failures make it return an error.
func (r *Restorer) RestoreSession(ctx context.Context, session string) error {
	results, err := r.Instrumenter.Restore(ctx, session)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, res := range results {
		switch res.Outcome {
		case Restored, Merged, Left:
			// Left: other selective sessions still share the function; only this session's entries went.
			r.Logger.InfoContext(ctx, "restored after the session ended", "session", session, "function", res.FunctionName,
				"outcome", res.Outcome, "message", res.Message)
		case Failed:
			errs = append(errs, fmt.Errorf("restore %s: %w", res.FunctionName, res.Err))
		default:
			r.Logger.WarnContext(ctx, "not restored after the session ended", "session", session, "function", res.FunctionName,
				"outcome", res.Outcome, "message", res.Message)
		}
	}
	return errors.Join(errs...)
}
