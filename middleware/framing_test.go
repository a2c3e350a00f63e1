package middleware_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAmbiguousFramingClosesTheConnection sends, on one loopback
// connection, requests whose framing is ambiguous followed by a smuggled
// request, and checks that the connection is closed after the response to
// the ambiguous one, so that the smuggled request is never served, while
// requests framed without ambiguity keep the connection open.
func TestAmbiguousFramingClosesTheConnection(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	const chunkedBody = "5\r\nhello\r\n0\r\n\r\n"
	const fake = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name string
		// reqs are sent at once; served are the paths answered before the
		// connection ends.
		reqs   string
		served []string
		closed bool
		// after is what follows the request after which the server
		// closes, as the server frames it (default: smuggled).
		after string
	}{
		{"Content-Length and chunked",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody + smuggled,
			[]string{"/a"}, true, ""},
		{"chunked before Content-Length, other case",
			"POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\ncontent-length: 3\r\n\r\n" + chunkedBody + smuggled,
			[]string{"/a"}, true, ""},
		{"Content-Length 0 and chunked",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody + smuggled,
			[]string{"/a"}, true, ""},
		{"HTTP/1.0 keep-alive with chunked",
			"POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + smuggled,
			[]string{"/a"}, true, ""},
		{"HTTP/1.0 keep-alive with chunked and Content-Length",
			"POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody + smuggled,
			[]string{"/a"}, true, chunkedBody + smuggled},
		{"after a Content-Length body and a chunked body",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
				"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n" +
				"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody + smuggled,
			[]string{"/a", "/b", "/c"}, true, ""},
		{"folded Content-Length with chunked",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nContent-Length:\r\n 5\r\n\r\n" + chunkedBody + smuggled,
			[]string{"/a"}, true, ""},

		// Unambiguous framing: every request is served on one connection,
		// bodies that look like headers included.
		{"chunked only",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedBody + smuggled,
			[]string{"/a", "/smuggled"}, false, ""},
		{"bodies that look like requests",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(fake)) + "\r\n\r\n" + fake +
				"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				strconv.FormatInt(int64(len(fake)), 16) + "\r\n" + fake + "\r\n0\r\n\r\n" + smuggled,
			[]string{"/a", "/b", "/smuggled"}, false, ""},
		{"HTTP/1.0 keep-alive",
			"POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello" +
				"GET /smuggled HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
			[]string{"/a", "/smuggled"}, false, ""},
	}
	handled := make(chan string, 100)
	addr := serveListener(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		handled <- r.URL.Path
		_, _ = io.WriteString(w, "ok")
	}))
	for _, tt := range tests {
		for _, bytewise := range []bool{false, true} {
			name := tt.name
			if bytewise {
				name += ", byte by byte"
			}
			t.Run(name, func(t *testing.T) {
				c, err := net.Dial("tcp", addr)
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
				if bytewise {
					// The bytes reach the server in pieces of any size. What
					// follows the last request served is left out when the
					// server closes: bytes arriving after the close would
					// reset the connection before its response is read.
					reqs := tt.reqs
					if tt.closed {
						after := tt.after
						if after == "" {
							after = smuggled
						}
						reqs = strings.TrimSuffix(reqs, after)
					}
					for i := range len(reqs) {
						_, err = c.Write([]byte{reqs[i]})
						require.NoError(t, err)
					}
				} else {
					_, err = io.WriteString(c, tt.reqs)
					require.NoError(t, err)
				}
				br := bufio.NewReader(c)
				for i, path := range tt.served {
					resp, err := http.ReadResponse(br, nil)
					require.NoError(t, err, "response to %s", path)
					_, err = io.Copy(io.Discard, resp.Body)
					require.NoError(t, err)
					require.NoError(t, resp.Body.Close())
					assert.Equal(t, 200, resp.StatusCode)
					select {
					case got := <-handled:
						assert.Equal(t, path, got)
					case <-time.After(10 * time.Second):
						t.Fatalf("%s not served", path)
					}
					last := i == len(tt.served)-1
					require.Equal(t, tt.closed && last, resp.Close, "Connection: close on %s", path)
				}
				if tt.closed {
					rest, err := io.ReadAll(br)
					require.NoError(t, err)
					assert.Empty(t, rest, "nothing follows the closing response")
				}
				select {
				case p := <-handled:
					t.Fatalf("%s was served", p)
				default:
				}
			})
		}
	}
}
