package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/plldb/plldb/bridge/relay"
)

// One attach or detach of a stack asks whether the same few sessions are live once per function: the session
// that claims or leaves, and each session sharing the function with it. Read every time, that was one
// GetItem per session per function (two of a selective join's seven requests per function, with one other
// developer attached), for answers that are the same for the whole call. A context made by WithSessionCache
// carries the answers for the length of one such call.

type sessionCacheKey struct{}

// sessionCache holds the sessions read under one WithSessionCache context, by sessions table and id.
type sessionCache struct {
	mu sync.Mutex
	m  map[string]*sessionRead
}

// sessionRead is one session's read, shared by every function of the call that asks: done closes once sess and
// err are set.
type sessionRead struct {
	done chan struct{}
	sess relay.Session
	err  error
}

// WithSessionCache returns a context under which the store reads each session's liveness at most once (Claim,
// Leave, and the holders they check): for one attach or detach of many functions, which asks about the same
// sessions for every function. A session found gone stays gone for the context's life, and one found live is
// still checked against its expiry, on the store's clock, at every use; only a session deleted during the call
// is seen as live until the next call, as it would be by a request that read it a moment before. Liveness is
// never part of a claim's write condition (the version is), so the cache changes when it is read, not what a
// write can overwrite. Without such a context every check is a read. Nested calls share the outer cache.
func WithSessionCache(ctx context.Context) context.Context {
	if _, ok := ctx.Value(sessionCacheKey{}).(*sessionCache); ok {
		return ctx
	}
	return context.WithValue(ctx, sessionCacheKey{}, &sessionCache{m: map[string]*sessionRead{}})
}

// live answers nil when the session is live and an error wrapping ErrNotFound when it has expired or is gone;
// any other error means it could not be read. Under WithSessionCache concurrent askers wait for one read.
func (s *Store) live(ctx context.Context, id string) error {
	c, _ := ctx.Value(sessionCacheKey{}).(*sessionCache)
	if c == nil || id == "" {
		_, err := s.GetSession(ctx, id)
		return err
	}
	key := s.t.Sessions + "\x00" + id
	c.mu.Lock()
	r, asked := c.m[key]
	if !asked {
		r = &sessionRead{done: make(chan struct{})}
		c.m[key] = r
	}
	c.mu.Unlock()
	if !asked {
		r.sess, r.err = s.GetSession(ctx, id)
		if r.err != nil && !errors.Is(r.err, ErrNotFound) {
			// A failed read answers nothing: the next asker reads again.
			c.mu.Lock()
			delete(c.m, key)
			c.mu.Unlock()
		}
		close(r.done)
		return r.err
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	switch {
	case r.err != nil && !errors.Is(r.err, ErrNotFound):
		_, err := s.GetSession(ctx, id)
		return err
	case r.err != nil:
		return r.err
	case !r.sess.ExpiresAt.IsZero() && !s.now().Before(r.sess.ExpiresAt):
		return fmt.Errorf("session %q expired: %w", id, ErrNotFound)
	}
	return nil
}
