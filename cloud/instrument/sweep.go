package instrument

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/plldb/plldb/bridge/relay"
	"github.com/plldb/plldb/cloud/store"
)

// DefaultGrace is how long a session's developer may go unheard before the sweep puts its functions back. The
// developer's plldb sends a heartbeat every 4 minutes (bridge/wsclient) and the relay records one a minute at
// most (store.SeenInterval), so 20 minutes is several missed heartbeats in a row: a laptop asleep or a plldb
// that died, not a slow network.
const DefaultGrace = 20 * time.Minute

// SweepStore is what the sweep needs of the session store; *store.Store implements it.
type SweepStore interface {
	// StaleSessions lists the sessions holding claims that expired, are gone, or whose developer has been silent
	// for longer than grace.
	StaleSessions(ctx context.Context, grace time.Duration) ([]store.StaleSession, error)
	DeleteSession(ctx context.Context, id string) error
}

var _ SweepStore = (*store.Store)(nil)

// Sweeper is the helper stack's dead-man switch: run on a schedule by the relay Lambda, it puts back the
// functions of sessions nobody is left to detach (expired, deleted, or whose developer went silent past Grace),
// from the claim store alone, and ends those sessions.
type Sweeper struct {
	Store    SweepStore
	Restorer relay.Restorer
	Grace    time.Duration // default DefaultGrace
	Logger   *slog.Logger
}

// NewSweeper returns a Sweeper on the DynamoDB store, restoring with the Lambda API of cfg.
func NewSweeper(cfg aws.Config, st *store.Store, grace time.Duration, log *slog.Logger) *Sweeper {
	if log == nil {
		log = slog.Default()
	}
	return &Sweeper{Store: st, Restorer: NewRestorer(cfg, st, log), Grace: grace, Logger: log}
}

// Swept is one session a sweep ended.
type Swept struct {
	Session string `json:"session"`
	Owner   string `json:"owner,omitempty"`
	Reason  string `json:"reason"`
	Error   string `json:"error,omitempty"` // why some of its functions are not back yet; the next sweep tries again
}

// SweepReport is what one sweep did: the relay Lambda's answer to the schedule.
type SweepReport struct {
	Swept []Swept `json:"swept"`
}

// Sweep ends every stale session and restores its functions. A session is ended (deleted) before its functions
// are restored, so that a developer who comes back finds it over rather than reconnecting into a session that
// is being taken apart. Functions that could not be restored keep their claims, and the next sweep tries again
// (their session is then gone, which is stale too). The error is for a store that cannot be read; restore
// failures are in the report and the log.
func (s *Sweeper) Sweep(ctx context.Context) (SweepReport, error) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	grace := s.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	report := SweepReport{Swept: []Swept{}}
	if s.Store == nil || s.Restorer == nil {
		return report, errors.New("sweep: the sweeper needs a store and a restorer")
	}
	stale, err := s.Store.StaleSessions(ctx, grace)
	if err != nil {
		return report, fmt.Errorf("sweep: %w", err)
	}
	for _, st := range stale {
		sw := Swept{Session: st.ID, Owner: st.Owner, Reason: st.Reason}
		l := log.With("session", st.ID, "owner", st.Owner, "reason", st.Reason)
		if err := s.Store.DeleteSession(ctx, st.ID); err != nil {
			sw.Error = err.Error()
			l.ErrorContext(ctx, "sweep could not end a stale session", "err", err.Error())
			report.Swept = append(report.Swept, sw)
			continue
		}
		if err := s.Restorer.RestoreSession(ctx, st.ID); err != nil {
			sw.Error = err.Error()
			l.ErrorContext(ctx, "sweep could not restore every function of a stale session; the next sweep tries again", "err", err.Error())
		} else {
			l.InfoContext(ctx, "sweep restored the functions of a stale session")
		}
		report.Swept = append(report.Swept, sw)
	}
	return report, nil
}
