package wstest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/router/ws"
)

// BrokerConformance checks a ws.Broker implementation: every call of
// newBroker must return a broker on the same bus (the same in-process
// broker, or a new client of the same Redis channel), as the instances of
// one deployment would hold. Messages published on any of them reach the
// Run of every one, the publisher's included, unchanged and in publishing
// order; Run returns once its context is done.
func BrokerConformance(t *testing.T, newBroker func(t *testing.T) ws.Broker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type sub struct {
		mu   sync.Mutex
		got  []ws.Message
		done chan struct{}
	}
	brokers := []ws.Broker{newBroker(t), newBroker(t)}
	subs := make([]*sub, len(brokers))
	for i, b := range brokers {
		s := &sub{done: make(chan struct{})}
		subs[i] = s
		go func() {
			defer close(s.done)
			_ = b.Run(ctx, func(m ws.Message) {
				s.mu.Lock()
				s.got = append(s.got, m)
				s.mu.Unlock()
			}, func(error) {})
		}()
	}
	t.Cleanup(func() {
		cancel()
		for _, s := range subs {
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				t.Error("wstest: Run did not return after its context was cancelled")
			}
		}
	})
	has := func(s *sub, pred func(ws.Message) bool) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.got {
			if pred(m) {
				return true
			}
		}
		return false
	}
	waitAll := func(what string, pred func(ws.Message) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for _, s := range subs {
			for !has(s, pred) {
				if time.Now().After(deadline) {
					t.Fatalf("wstest: %s never reached every subscriber", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}

	// Subscriptions start asynchronously: probe until both receive.
	probe := func(m ws.Message) bool { return m.Scope == ws.ScopeAll && m.Origin == "probe" }
	deadline := time.Now().Add(10 * time.Second)
	for !has(subs[0], probe) || !has(subs[1], probe) {
		if time.Now().After(deadline) {
			t.Fatal("wstest: subscriptions never received a probe")
		}
		if err := brokers[0].Publish(ctx, ws.Message{Origin: "probe", Scope: ws.ScopeAll, Payload: []byte(`{}`)}); err != nil {
			t.Fatalf("wstest: publish: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	want := ws.Message{Origin: "instance-b", Scope: ws.ScopeRole, Target: "ops ünïcode", Payload: []byte(`{"pkg_id":100,"req_id":"00000000-0000-0000-0000-000000000000","data":[1,"\u00e9"]}`)}
	if err := brokers[1].Publish(ctx, want); err != nil {
		t.Fatalf("wstest: publish: %v", err)
	}
	waitAll("a message", func(m ws.Message) bool {
		return m.Origin == want.Origin && m.Scope == want.Scope && m.Target == want.Target && bytes.Equal(m.Payload, want.Payload)
	})

	const n = 50
	for i := range n {
		if err := brokers[0].Publish(ctx, ws.Message{Origin: "seq", Scope: ws.ScopeUser, Target: fmt.Sprint(i), Payload: []byte(`{}`)}); err != nil {
			t.Fatalf("wstest: publish: %v", err)
		}
	}
	last := fmt.Sprint(n - 1)
	waitAll("a sequence", func(m ws.Message) bool { return m.Origin == "seq" && m.Target == last })
	for i, s := range subs {
		s.mu.Lock()
		next := 0
		for _, m := range s.got {
			if m.Origin != "seq" {
				continue
			}
			if m.Target != fmt.Sprint(next) {
				t.Errorf("wstest: subscriber %d got message %s, want %d (lost, repeated or reordered)", i, m.Target, next)
				break
			}
			next++
		}
		s.mu.Unlock()
	}
}
