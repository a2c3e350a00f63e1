package ws

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func msgOf(n int) []byte { return make([]byte, n) }

func TestSendQueuePushLimit(t *testing.T) {
	var q sendQueue
	assert.Equal(t, pushed, q.push(msgOf(40), 100))
	assert.Equal(t, pushed, q.push(msgOf(60), 100), "exactly the limit fits")
	assert.Equal(t, pushOverflow, q.push(msgOf(1), 100))
	assert.Equal(t, 100, q.bytes)

	var big sendQueue
	assert.Equal(t, pushed, big.push(msgOf(500), 100), "one message larger than the queue enters an empty queue")
	assert.Equal(t, pushOverflow, big.push(msgOf(1), 100))
}

func TestSendQueueBytesBeingWrittenCount(t *testing.T) {
	var q sendQueue
	require.True(t, q.acquire(80, true))
	assert.Equal(t, pushOverflow, q.push(msgOf(30), 100), "the message being written still fills the queue")
	assert.False(t, q.release(80))
	assert.Equal(t, pushed, q.push(msgOf(30), 100))
}

func TestSendQueueOneWriter(t *testing.T) {
	var q sendQueue
	require.True(t, q.acquire(10, true))
	assert.False(t, q.acquire(10, true), "a second direct writer")
	assert.False(t, q.acquire(10, false), "a second writer of the first message")
	require.Equal(t, pushed, q.push(msgOf(5), 100))
	msgs, cr, busy := q.take(0)
	assert.True(t, busy, "the writer waits for the direct writer")
	assert.Nil(t, msgs)
	assert.Nil(t, cr)
	assert.True(t, q.release(10), "queued work is reported to the direct writer")

	assert.False(t, q.acquire(10, true), "a direct write would overtake the queue")
	msgs, _, busy = q.take(0)
	require.False(t, busy)
	require.Len(t, msgs, 1)
	assert.False(t, q.acquire(10, false), "the writer holds the writing state")
	_, _, busy = q.take(0)
	assert.True(t, busy)
	q.done(msgs)
	assert.Equal(t, 0, q.bytes)
	assert.True(t, q.acquire(10, true))
}

func TestSendQueueTakeMax(t *testing.T) {
	var q sendQueue
	for i := 1; i <= 5; i++ {
		require.Equal(t, pushed, q.push(msgOf(i), 100))
	}
	msgs, _, _ := q.take(2)
	require.Len(t, msgs, 2)
	assert.Equal(t, []int{1, 2}, []int{len(msgs[0]), len(msgs[1])})
	q.done(msgs)
	assert.Equal(t, 12, q.bytes)
	msgs, _, _ = q.take(0)
	require.Len(t, msgs, 3)
	q.done(msgs)
	assert.Equal(t, 0, q.bytes)
	msgs, cr, busy := q.take(0)
	assert.Empty(t, msgs)
	assert.Nil(t, cr)
	assert.False(t, busy)
	assert.Nil(t, q.msgs, "an idle queue keeps no backing array")
}

func TestSendQueueClose(t *testing.T) {
	t.Run("flushing close keeps the queue", func(t *testing.T) {
		var q sendQueue
		require.Equal(t, pushed, q.push(msgOf(10), 100))
		require.True(t, q.close(closeReq{code: 1001, flush: true}))
		assert.False(t, q.close(closeReq{code: 1000}), "the first close stays")
		assert.Equal(t, pushClosing, q.push(msgOf(1), 100))
		assert.False(t, q.acquire(1, false))
		msgs, cr, _ := q.take(0)
		require.Len(t, msgs, 1)
		require.NotNil(t, cr)
		assert.Equal(t, 1001, cr.code)
		q.done(msgs)
		code, ok := q.closeCode()
		assert.True(t, ok)
		assert.Equal(t, 1001, code)
	})
	t.Run("close without flush drops the queue", func(t *testing.T) {
		var q sendQueue
		require.Equal(t, pushed, q.push(msgOf(10), 100))
		require.Equal(t, pushed, q.push(msgOf(20), 100))
		require.True(t, q.close(closeReq{code: 1006}))
		msgs, cr, busy := q.take(0)
		assert.Empty(t, msgs)
		assert.False(t, busy)
		assert.Equal(t, 1006, cr.code)
		assert.Equal(t, 0, q.bytes)
	})
	t.Run("force replaces a flushing close only", func(t *testing.T) {
		var q sendQueue
		require.True(t, q.force(closeReq{code: 1008}), "the first close")
		assert.False(t, q.force(closeReq{code: 1006}), "a close without flush stays")

		var f sendQueue
		require.True(t, f.close(closeReq{code: 1001, flush: true}))
		require.True(t, f.force(closeReq{code: 1006}))
		code, _ := f.closeCode()
		assert.Equal(t, 1006, code)
	})
	t.Run("drop", func(t *testing.T) {
		var q sendQueue
		require.Equal(t, pushed, q.push(msgOf(10), 100))
		_, ok := q.closeCode()
		assert.False(t, ok)
		q.drop()
		assert.Equal(t, 0, q.bytes)
		assert.Nil(t, q.msgs)
	})
}

// TestSendQueueSingleWriterUnderContention has direct writers, pushers and
// a draining writer race: at no time do two goroutines hold the writing
// state, and every byte counted is given back.
func TestSendQueueSingleWriterUnderContention(t *testing.T) {
	var q sendQueue
	var mu sync.Mutex
	holders := 0
	enter := func() {
		mu.Lock()
		holders++
		if holders != 1 {
			t.Errorf("%d goroutines write at once", holders)
		}
		mu.Unlock()
	}
	leave := func() {
		mu.Lock()
		holders--
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				if q.acquire(7, true) {
					enter()
					leave()
					q.release(7)
				} else {
					q.push(msgOf(3), 1<<20)
				}
			}
		})
	}
	wg.Go(func() {
		for range 2000 {
			msgs, _, busy := q.take(0)
			if busy || len(msgs) == 0 {
				continue
			}
			enter()
			leave()
			q.done(msgs)
		}
	})
	wg.Wait()
	for {
		msgs, _, _ := q.take(0)
		if len(msgs) == 0 {
			break
		}
		q.done(msgs)
	}
	assert.Equal(t, 0, q.bytes)
	assert.False(t, q.writing)
}
