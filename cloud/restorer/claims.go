package restorer

import (
	"context"
	"errors"

	"github.com/plldb/plldb/cloud/instrument"
	"github.com/plldb/plldb/cloud/store"
)

// Claims makes the DynamoDB store an instrument.Claims. The two packages keep their own Snapshot types (the
// instrumenter must not depend on DynamoDB); the fields are the same, so conversion is a plain copy.
type Claims struct{ Store *store.Store }

var _ instrument.Claims = Claims{}

func toStore(s instrument.Snapshot) store.Snapshot { return store.Snapshot(s) }

func fromStore(s store.Snapshot) instrument.Snapshot { return instrument.Snapshot(s) }

// heldError turns the store's *HeldError into the instrumenter's, which is what Instrument reports.
func heldError(err error) error {
	var held *store.HeldError
	if errors.As(err, &held) {
		return &instrument.HeldError{Session: held.Session, Owner: held.Owner}
	}
	return err
}

// Claim implements instrument.Claims.
func (c Claims) Claim(ctx context.Context, snap instrument.Snapshot, owner string) error {
	return heldError(c.Store.Claim(ctx, toStore(snap), owner))
}

// SetRevisionAfter implements instrument.Claims.
func (c Claims) SetRevisionAfter(ctx context.Context, functionARN, session, revision string) error {
	err := c.Store.SetRevisionAfter(ctx, functionARN, session, revision)
	var held *store.HeldError
	if errors.As(err, &held) || errors.Is(err, store.ErrNotFound) {
		return errors.Join(instrument.ErrNotHeld, err)
	}
	return err
}

// GetSnapshot implements instrument.Claims.
func (c Claims) GetSnapshot(ctx context.Context, functionARN string) (instrument.Snapshot, bool, error) {
	s, ok, err := c.Store.GetSnapshot(ctx, functionARN)
	return fromStore(s), ok, err
}

// SessionSnapshots implements instrument.Claims.
func (c Claims) SessionSnapshots(ctx context.Context, session string) ([]instrument.Snapshot, error) {
	ss, err := c.Store.SessionSnapshots(ctx, session)
	if err != nil {
		return nil, err
	}
	out := make([]instrument.Snapshot, len(ss))
	for i, s := range ss {
		out[i] = fromStore(s)
	}
	return out, nil
}

// Release implements instrument.Claims.
func (c Claims) Release(ctx context.Context, functionARN, session string) error {
	return c.Store.Release(ctx, functionARN, session)
}
