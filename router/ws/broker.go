package ws

import (
	"context"
	"sync"
)

// Scope names the connections a push targets. Its values are the scope
// label of ws_push_total.
type Scope string

// Push scopes.
const (
	ScopeConn Scope = "connection" // one connection, by connection id
	ScopeUser Scope = "user"       // every connection of a user, by principal id
	ScopeRole Scope = "role"       // every connection whose principal holds a role
	ScopeAll  Scope = "all"        // every connection
)

// Message is a push on its way between instances.
type Message struct {
	// Origin is the instance id of the endpoint that published it;
	// endpoints skip their own messages (they delivered them locally).
	Origin string `json:"origin"`
	// Scope and Target select the connections: a connection id, a
	// principal id, a role, or nothing for ScopeAll.
	Scope  Scope  `json:"scope"`
	Target string `json:"target,omitempty"`
	// Payload is the encoded push envelope (router.EncodePush).
	Payload []byte `json:"payload"`
}

// Broker carries pushes between the endpoints of several instances.
// Implementations are safe for concurrent use.
type Broker interface {
	// Publish sends m to every endpoint running the broker, the publisher
	// included.
	Publish(ctx context.Context, m Message) error
	// Run delivers every published message to deliver until ctx is done.
	// It reports failures (a lost or silent subscription)
	// to report and keeps going: it reconnects by itself. deliver must not
	// block for long.
	Run(ctx context.Context, deliver func(Message), report func(error)) error
}

// MemoryBroker is the in-process Broker: endpoints of one process that
// share it reach each other's connections.
type MemoryBroker struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(Message)
}

// NewMemoryBroker returns a MemoryBroker without subscribers.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{subs: make(map[int]func(Message))}
}

// Publish delivers m to every running subscriber, synchronously.
func (b *MemoryBroker) Publish(_ context.Context, m Message) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, deliver := range b.subs {
		deliver(m)
	}
	return nil
}

// Run subscribes deliver until ctx is done.
func (b *MemoryBroker) Run(ctx context.Context, deliver func(Message), _ func(error)) error {
	b.mu.Lock()
	id := b.next
	b.next++
	b.subs[id] = deliver
	b.mu.Unlock()
	<-ctx.Done()
	b.mu.Lock()
	delete(b.subs, id)
	b.mu.Unlock()
	return nil
}
