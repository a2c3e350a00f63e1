package ws

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInlineWatch(t *testing.T) {
	var handoffs atomic.Int32
	handoff := func() { handoffs.Add(1) }

	// A serve shorter than the delay keeps the reading (a delay no run
	// reaches, so that a loaded machine cannot make the serve long).
	long := newInlineWatch(time.Hour)
	defer long.stop()
	s := long.begin(long.shard(), handoff)
	assert.True(t, long.armed.Load(), "armed by a serve")
	assert.True(t, long.end(s))
	assert.Zero(t, handoffs.Load())

	// A serve longer than the delay hands it over, once.
	w := newInlineWatch(time.Millisecond)
	defer w.stop()
	s = w.begin(w.shard(), handoff)
	require.Eventually(t, func() bool { return handoffs.Load() == 1 }, time.Minute, time.Millisecond)
	assert.False(t, w.end(s))

	// Once nothing is served inline, the timer is disarmed.
	require.Eventually(t, func() bool { return !w.armed.Load() }, time.Minute, time.Millisecond)
	assert.False(t, w.pending())
	assert.Equal(t, int32(1), handoffs.Load())

	// And armed again by the next serve.
	s = w.begin(w.shard(), func() {})
	assert.True(t, w.armed.Load())
	w.end(s)
}
