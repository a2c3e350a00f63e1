package ws

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInlineWatch(t *testing.T) {
	w := newInlineWatch(5 * time.Millisecond)
	defer w.stop()
	var handoffs atomic.Int32
	handoff := func() { handoffs.Add(1) }

	// A short serve keeps the reading.
	s := w.begin(w.shard(), handoff)
	assert.True(t, w.end(s))

	// A long one hands it over, once.
	s = w.begin(w.shard(), handoff)
	require.Eventually(t, func() bool { return handoffs.Load() == 1 }, time.Second, time.Millisecond)
	assert.False(t, w.end(s))

	// Once nothing is served inline, the timer is disarmed.
	require.Eventually(t, func() bool { return !w.armed.Load() }, time.Second, time.Millisecond)
	assert.False(t, w.pending())
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, int32(1), handoffs.Load())

	// And armed again by the next serve.
	s = w.begin(w.shard(), handoff)
	assert.True(t, w.armed.Load())
	assert.True(t, w.end(s))
}
