package ws

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/router"
)

// PushToConn pushes {pkg_id, zero req_id, data} to one connection, on
// whichever instance holds it.
func (e *Endpoint[T]) PushToConn(ctx context.Context, connID string, pkg T, data any) error {
	return e.push(ctx, ScopeConn, connID, pkg, data)
}

// PushToUser pushes to every connection of the user with principal id
// userID, on every instance.
func (e *Endpoint[T]) PushToUser(ctx context.Context, userID string, pkg T, data any) error {
	return e.push(ctx, ScopeUser, userID, pkg, data)
}

// PushToRole pushes to every connection whose principal holds role, on
// every instance.
func (e *Endpoint[T]) PushToRole(ctx context.Context, role string, pkg T, data any) error {
	return e.push(ctx, ScopeRole, role, pkg, data)
}

// Broadcast pushes to every authenticated connection of every instance.
func (e *Endpoint[T]) Broadcast(ctx context.Context, pkg T, data any) error {
	return e.push(ctx, ScopeAll, "", pkg, data)
}

// push delivers to the local connections at once, then publishes to the
// broker for the other instances. Local delivery does not depend on the
// broker; a publish failure is counted, logged and returned.
func (e *Endpoint[T]) push(ctx context.Context, scope Scope, target string, pkg T, data any) error {
	payload, err := router.EncodePush(pkg, data)
	if err != nil {
		return fmt.Errorf("ws: encode push: %w", err)
	}
	e.metrics.pushed(scope)
	n := e.deliver(scope, target, payload)
	if e.cfg.Broker == nil || scope == ScopeConn && n > 0 {
		return nil
	}
	if err := e.cfg.Broker.Publish(ctx, Message{Origin: e.instance, Scope: scope, Target: target, Payload: payload}); err != nil {
		e.brokerFailed(err)
		return fmt.Errorf("ws: publish push: %w", err)
	}
	return nil
}

func (e *Endpoint[T]) brokerFailed(err error) {
	e.metrics.brokerError()
	e.flog.Warn("ws: push broker failed", "error", err)
}

func (e *Endpoint[T]) deliverRemote(m Message) {
	if m.Origin != e.instance {
		e.deliver(m.Scope, m.Target, m.Payload)
	}
}

// deliver queues payload on the matching local connections and returns
// how many there were.
func (e *Endpoint[T]) deliver(scope Scope, target string, payload []byte) int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	n := 0
	send := func(c *conn[T]) {
		if c.principal.Load() != nil && c.enqueue(payload) {
			n++
		}
	}
	switch scope {
	case ScopeConn:
		if c := e.conns[target]; c != nil {
			send(c)
		}
	case ScopeUser:
		for _, c := range e.byUser[target] {
			send(c)
		}
	case ScopeRole:
		for _, c := range e.conns {
			if c.principal.Load().HasRole(target) {
				send(c)
			}
		}
	case ScopeAll:
		for _, c := range e.conns {
			send(c)
		}
	}
	return n
}

// Shutdown drains the endpoint: new upgrades get 503 and new requests on
// open connections get service_unavailable; requests in flight run until
// they finish or ctx is done; then every connection is closed with 1001
// (replies already queued are written first), at most DrainConcurrency at
// a time. It returns when every connection goroutine has exited. When ctx
// ends first, the requests still running are cancelled, every remaining
// connection is sent a 1001 close frame where it can be written within a
// short time (250 ms; a peer that stopped reading gets none) and dropped,
// and ctx.Err() is returned (still after their goroutines exited, which
// needs their handlers to honour cancellation).
//
// http.Server.Shutdown does not know hijacked connections: call
// Endpoint.Shutdown first, then the server's Shutdown. Registering
// ShutdownHook with http.Server.RegisterOnShutdown instead starts the
// drain when the server shuts down, but http.Server.Shutdown does not wait
// for RegisterOnShutdown hooks: the application must still call
// Endpoint.Shutdown (which waits for a drain in progress) before it exits.
func (e *Endpoint[T]) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	e.draining.Store(true)
	e.mu.Unlock()

	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var err error
	for e.inflight.Load() > 0 && err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-tick.C:
		}
	}

	e.mu.RLock()
	conns := make([]*conn[T], 0, len(e.conns))
	for _, c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.RUnlock()

	if err == nil {
		work := make(chan *conn[T])
		var wg sync.WaitGroup
		for range min(e.cfg.DrainConcurrency, len(conns)) {
			wg.Go(func() {
				for c := range work {
					c.requestClose(closeReq{code: websocket.CloseGoingAway, reason: reasonShutdown, flush: true, frame: true})
					select {
					case <-c.done:
					case <-ctx.Done():
					}
				}
			})
		}
	feed:
		for _, c := range conns {
			select {
			case work <- c:
			case <-ctx.Done():
				break feed
			}
		}
		close(work)
		wg.Wait()
		err = ctx.Err()
	}
	if err != nil {
		e.closeNow(conns)
	}
	e.wg.Wait()
	e.shutdownOnce.Do(func() {
		e.watch.stop()
		if e.brokerStop != nil {
			e.brokerStop()
			<-e.brokerDone
		}
	})
	return err
}

// forcedCloseTimeout bounds how long Shutdown spends, once its context has
// ended, on telling the remaining connections that it closes them.
const forcedCloseTimeout = 250 * time.Millisecond

// closeNow closes conns without waiting for their requests: within
// forcedCloseTimeout, each is sent a 1001 close frame (best effort, at most
// DrainConcurrency writes at a time, so that peers that stopped reading do
// not hold up the others) and given the time left to answer it; then every
// network connection is dropped.
func (e *Endpoint[T]) closeNow(conns []*conn[T]) {
	deadline := time.Now().Add(forcedCloseTimeout)
	cr := closeReq{code: websocket.CloseGoingAway, reason: reasonShutdown} // frame: sent here
	work := make(chan *conn[T])
	var wg sync.WaitGroup
	for range min(e.cfg.DrainConcurrency, len(conns)) {
		wg.Go(func() {
			for c := range work {
				if c.forceClose(cr) {
					c.writeClose(cr, deadline)
				}
			}
		})
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, c := range conns {
		select {
		case <-c.readerDone: // the peer answered (or is gone)
		case <-ctx.Done():
		}
		c.abort()
	}
}

// ShutdownHook returns a function for http.Server.RegisterOnShutdown that
// drains the endpoint within timeout when the server shuts down.
//
// http.Server.Shutdown runs such hooks in goroutines of their own and does
// not wait for them: it may return while connections are still draining.
// Call Endpoint.Shutdown after it (it returns once the drain is over) before
// the application exits, or the drain is cut short.
func (e *Endpoint[T]) ShutdownHook(timeout time.Duration) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			e.log.Warn("ws: drain did not finish in time", "error", err)
		}
	}
}
