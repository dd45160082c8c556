package dap

import "sync"

// ref names an id in one debuggee's own id space.
type ref struct {
	d  *debuggee
	id int
}

// handles maps the ids of several debuggees into one adapter id space, both ways. Like Delve's handlesMap,
// adapter ids start at 1 and are never reused, so a stale id from the IDE can never reach the wrong debuggee.
//
// An id may have an owner: the IDE thread whose stop it belongs to (frames, variables). Delve resets its frame
// and variable handles at every stop because one stop invalidates them all; here one function's stop must not
// invalidate the frames the IDE holds for another function that is still paused, so the reset is per owner
// (dropOwner), done whenever that thread stops or resumes.
type handles[K comparable] struct {
	mu    sync.Mutex
	next  int
	fwd   map[K]int
	back  map[int]K
	owner map[int]int // adapter id → owning IDE thread id (absent: no owner)
}

func newHandles[K comparable]() *handles[K] {
	return &handles[K]{next: 1, fwd: map[K]int{}, back: map[int]K{}, owner: map[int]int{}}
}

// get returns the adapter id for k, creating one on first sight.
func (h *handles[K]) get(k K) int { return h.getOwned(k, 0) }

// getOwned is get that records owner (an IDE thread id; 0 for none) for an id it creates.
func (h *handles[K]) getOwned(k K, owner int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id, ok := h.fwd[k]; ok {
		return id
	}
	id := h.next
	h.next++
	h.fwd[k] = id
	h.back[id] = k
	if owner != 0 {
		h.owner[id] = owner
	}
	return id
}

// peek returns the adapter id for k without creating one.
func (h *handles[K]) peek(k K) (int, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.fwd[k]
	return id, ok
}

// lookup returns what an adapter id stands for.
func (h *handles[K]) lookup(id int) (K, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k, ok := h.back[id]
	return k, ok
}

// ownerOf returns the IDE thread an adapter id belongs to (0: none).
func (h *handles[K]) ownerOf(id int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.owner[id]
}

// bind makes k stand for an existing adapter id (several debuggees' breakpoints share one IDE breakpoint).
func (h *handles[K]) bind(k K, id int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fwd[k] = id
}

// drop forgets every key for which del is true (a debuggee that went away).
func (h *handles[K]) drop(del func(K) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, id := range h.fwd {
		if del(k) {
			delete(h.fwd, k)
			if h.back[id] == k {
				delete(h.back, id)
			}
			delete(h.owner, id)
		}
	}
}

// dropOwner forgets every id owned by the IDE thread owner: the thread stopped anew or resumed, and debugpy's
// ids for its old frames and variables mean nothing any more.
func (h *handles[K]) dropOwner(owner int) {
	if owner == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, o := range h.owner {
		if o != owner {
			continue
		}
		delete(h.owner, id)
		if k, ok := h.back[id]; ok {
			delete(h.back, id)
			if h.fwd[k] == id {
				delete(h.fwd, k)
			}
		}
	}
}
