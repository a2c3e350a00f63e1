package middleware

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFramingStopsAtUpgrade checks that the bytes after a 101 (WebSocket
// frames) are not followed as HTTP.
func TestFramingStopsAtUpgrade(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	c := &errConn{Conn: server}
	defer c.Close()
	go func() {
		_, _ = client.Write([]byte("GET /web HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"))
		buf := make([]byte, 256)
		_, _ = client.Read(buf)
		_, _ = client.Write([]byte("\x81\x85frame\nGET / HTTP/1.1\r\n"))
	}()
	buf := make([]byte, 256)
	_, err := c.Read(buf)
	require.NoError(t, err)
	assert.False(t, c.framing.done)
	_, err = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"))
	require.NoError(t, err)
	_, err = c.Read(buf)
	require.NoError(t, err)
	assert.True(t, c.framing.done, "frames are not HTTP")
	assert.Zero(t, c.framing.closeAt.Load(), "and close nothing")
	assert.EqualValues(t, 1, c.framing.requests)
}
