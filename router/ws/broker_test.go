package ws_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quiet drops the messages the clients already hold.
func quiet(clients ...*wstest.Client) {
	for _, c := range clients {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			_, err := c.Next(ctx)
			cancel()
			if err != nil {
				break
			}
		}
	}
}

func TestMemoryBrokerFansOut(t *testing.T) {
	b := ws.NewMemoryBroker()
	a := newFixture(t, ws.Config{Authenticator: fakeAuth, Broker: b})
	c := newFixture(t, ws.Config{Authenticator: fakeAuth, Broker: b})
	onA := a.dial("user.ada.ops")
	onC := c.dial("user.ada")
	eventually(t, func() bool { // until both endpoints run their subscription
		require.NoError(t, a.e.PushToUser(ctxT(t), "id-ada", pkgPush, "probe"))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err := onC.Next(ctx)
		return err == nil
	}, "subscribed")
	quiet(onA, onC)

	require.NoError(t, c.e.PushToRole(ctxT(t), "ops", pkgPush, "ops only"))
	m, err := onA.Next(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, `"ops only"`, string(m.Data))
	require.NoError(t, c.e.Broadcast(ctxT(t), pkgPush, "all"))
	for _, cl := range []*wstest.Client{onA, onC} {
		m, err = cl.Next(ctxT(t))
		require.NoError(t, err)
		assert.Equal(t, `"all"`, string(m.Data), "exactly once, and no role push for a non-ops principal")
	}
}

type failingBroker struct{ *ws.MemoryBroker }

func (failingBroker) Publish(context.Context, ws.Message) error { return errors.New("down") }

func TestPublishFailureKeepsLocalDelivery(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, Broker: failingBroker{ws.NewMemoryBroker()}})
	c := f.dial("user.ada")
	require.Error(t, f.e.Broadcast(ctxT(t), pkgPush, 1))
	m, err := c.Next(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, `1`, string(m.Data))
	assert.Equal(t, 1.0, f.counter("ws_broadcast_errors_total"))
}

func TestMemoryBrokerConformance(t *testing.T) {
	b := ws.NewMemoryBroker()
	wstest.BrokerConformance(t, func(*testing.T) ws.Broker { return b })
}
