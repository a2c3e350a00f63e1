package ratelimit

import (
	"context"
	"sync"
)

// ConnectionLimiter caps the number of concurrent connections per user.
//
// A slot is identified by (user, connID); connID must be unique among the
// user's connections (e.g. a UUID per WebSocket connection). Implementations
// are safe for concurrent use.
type ConnectionLimiter interface {
	// Acquire takes a slot for connID when the user holds fewer than max
	// slots, atomically. Acquiring a slot that connID already holds succeeds
	// again without taking another. A non-nil error means no decision
	// (backend failing closed: kind service_unavailable).
	Acquire(ctx context.Context, user, connID string, max int) (ok bool, err error)
	// Release frees connID's slot. Releasing a slot that is not held is not
	// an error, so Release may be called more than once.
	Release(ctx context.Context, user, connID string) error
	// Renew extends the lease of a held slot, for implementations whose
	// slots expire unless renewed; it returns an error wrapping [ErrNotHeld]
	// when the slot is no longer held. Implementations without leases return
	// nil for held slots.
	Renew(ctx context.Context, user, connID string) error
}

// MemoryConnections is the in-process [ConnectionLimiter]. Its slots have
// no lease: they are held until released.
type MemoryConnections struct {
	mu    sync.Mutex
	users map[string]map[string]struct{}
}

// NewMemoryConnections returns an empty MemoryConnections.
func NewMemoryConnections() *MemoryConnections {
	return &MemoryConnections{users: make(map[string]map[string]struct{})}
}

// Acquire takes a slot for connID when user holds fewer than max.
func (c *MemoryConnections) Acquire(_ context.Context, user, connID string, max int) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conns := c.users[user]
	if _, ok := conns[connID]; ok {
		return true, nil
	}
	if len(conns) >= max {
		return false, nil
	}
	if conns == nil {
		conns = make(map[string]struct{})
		c.users[user] = conns
	}
	conns[connID] = struct{}{}
	return true, nil
}

// Release frees connID's slot, if held.
func (c *MemoryConnections) Release(_ context.Context, user, connID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	conns := c.users[user]
	delete(conns, connID)
	if len(conns) == 0 {
		delete(c.users, user)
	}
	return nil
}

// Renew returns nil when connID holds a slot, else ErrNotHeld.
func (c *MemoryConnections) Renew(_ context.Context, user, connID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.users[user][connID]; !ok {
		return ErrNotHeld
	}
	return nil
}

// Count returns the number of slots user holds.
func (c *MemoryConnections) Count(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.users[user])
}
