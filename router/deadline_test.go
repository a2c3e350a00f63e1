package router

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLazyDeadline(t *testing.T) {
	t.Run("expires without Done", func(t *testing.T) {
		c := withLazyDeadline(context.Background(), 20*time.Millisecond)
		defer c.release()
		assert.NoError(t, c.Err())
		time.Sleep(30 * time.Millisecond)
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded)
	})
	t.Run("Done fires at the deadline", func(t *testing.T) {
		c := withLazyDeadline(context.Background(), 20*time.Millisecond)
		defer c.release()
		select {
		case <-c.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("Done did not fire")
		}
		assert.ErrorIs(t, c.Err(), context.DeadlineExceeded)
	})
	t.Run("parent cancellation", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		c := withLazyDeadline(parent, time.Hour)
		defer c.release()
		cancel()
		assert.ErrorIs(t, c.Err(), context.Canceled)
		<-c.Done()
		assert.ErrorIs(t, c.Err(), context.Canceled)
	})
	t.Run("derived contexts see the deadline", func(t *testing.T) {
		c := withLazyDeadline(context.Background(), 20*time.Millisecond)
		defer c.release()
		child, cancel := context.WithCancel(c)
		defer cancel()
		<-child.Done()
		assert.True(t, errors.Is(child.Err(), context.DeadlineExceeded))
	})
	t.Run("earlier parent deadline wins", func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		c := withLazyDeadline(parent, time.Hour)
		defer c.release()
		d, ok := c.Deadline()
		require.True(t, ok)
		assert.WithinDuration(t, time.Now().Add(10*time.Millisecond), d, 10*time.Millisecond)
		assert.Equal(t, "v", context.WithValue(c, ctxTestKey{}, "v").Value(ctxTestKey{}))
	})
}

type ctxTestKey struct{}
