package middleware

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFramingFollowsRequests feeds request streams whole and byte by byte
// and checks after which request framing asks to close (0: none).
func TestFramingFollowsRequests(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name    string
		stream  string
		closeAt int64
	}{
		{"plain requests", get + get + get, 0},
		{"leading empty lines", "\r\n\r\n" + get + "\n" + get, 0},
		{"chunk extension longer than a line buffer",
			"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;" + strings.Repeat("e", 300) + "\r\nab\r\n0\r\n\r\n" + get, 0},
		{"trailers", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n" + get, 0},
		{"duplicate equal Content-Length",
			"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length:  2 \r\n\r\nab" + get, 0},
		{"long other header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("v", 500) + "\r\n\r\n" + get, 0},
		{"long request line", "GET /" + strings.Repeat("p", 500) + " HTTP/1.1\r\nHost: x\r\n\r\n" + get, 0},

		{"both lengths on the second request",
			get + "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get, 2},
		{"chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + get, 1},
		{"chunk line with a bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n" + get, 1},
		{"chunk data without CRLF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n" + get, 1},
		{"chunk size over 16 digits", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("0", 17) + "1\r\n", 1},
		{"differing Content-Length", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n" + get, 1},
		{"folded Transfer-Encoding", get + "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 2},
		{"two Transfer-Encoding", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 1},
		{"another protocol", "GET / HTTP/1.2\r\n\r\n", 1},
		{"not HTTP", "\x81\x85abcdefgh\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var whole framing
			whole.feed([]byte(tt.stream))
			assert.Equal(t, tt.closeAt, whole.closeAt.Load(), "whole")
			var bytewise framing
			for i := range len(tt.stream) {
				bytewise.feed([]byte{tt.stream[i]})
			}
			assert.Equal(t, tt.closeAt, bytewise.closeAt.Load(), "byte by byte")
		})
	}
}
