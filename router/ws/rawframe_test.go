package ws_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frame builds one WebSocket frame. b0 carries FIN, RSV and the opcode.
func frame(b0 byte, payload []byte, masked bool) []byte {
	out := []byte{b0}
	var maskBit byte
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, maskBit|byte(n))
	case n < 1<<16:
		out = append(out, maskBit|126, byte(n>>8), byte(n))
	default:
		out = append(out, maskBit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i%4])
	}
	return out
}

const (
	finText  = 0x81
	finBin   = 0x82
	finClose = 0x88
	finPing  = 0x89
	text     = 0x01 // not final
	cont     = 0x00
	finCont  = 0x80
)

func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// rawConn upgrades a plain TCP connection by hand.
func rawConn(t *testing.T, f *fixture, token string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	req := "GET /web HTTP/1.1\r\nHost: " + nc.RemoteAddr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	_, err = io.WriteString(nc, req+"\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return nc, br
}

// readClose reads server frames until a close frame (returning its code,
// 1005 for an empty payload) or the end of the stream (-1).
func readClose(t *testing.T, nc net.Conn, br *bufio.Reader) int {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return -1
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return -1
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return -1
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return -1
		}
		if h[0]&0x0f == 0x8 {
			if len(payload) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(payload))
		}
	}
}

func TestRawFrames(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	long := strings.Repeat("a", 126)
	tests := []struct {
		name   string
		frames [][]byte
		want   int
	}{
		{"unmasked client frame", [][]byte{frame(finText, []byte(`{}`), false)}, 1002},
		{"rsv1 set", [][]byte{frame(finText|0x40, []byte(`{}`), true)}, 1002},
		{"rsv2 set", [][]byte{frame(finText|0x20, []byte(`{}`), true)}, 1002},
		{"rsv3 on ping", [][]byte{frame(finPing|0x10, nil, true)}, 1002},
		{"reserved data opcode 3", [][]byte{frame(0x83, []byte(`{}`), true)}, 1002},
		{"reserved control opcode 0xB", [][]byte{frame(0x8b, nil, true)}, 1002},
		{"fragmented ping", [][]byte{frame(0x09, []byte("a"), true), frame(finCont, []byte("b"), true)}, 1002},
		{"oversized ping", [][]byte{frame(finPing, []byte(long), true)}, 1002},
		{"oversized close", [][]byte{frame(finClose, closePayload(1000, long), true)}, 1002},
		{"continuation without start", [][]byte{frame(finCont, []byte(`{}`), true)}, 1002},
		{"new message inside a fragmented one", [][]byte{frame(text, []byte(`{"a":`), true), frame(finText, []byte(`{}`), true)}, 1002},
		{"close code 999", [][]byte{frame(finClose, closePayload(999, ""), true)}, 1002},
		{"close code 1005", [][]byte{frame(finClose, closePayload(1005, ""), true)}, 1002},
		{"close code 1006", [][]byte{frame(finClose, closePayload(1006, ""), true)}, 1002},
		{"close code 1015", [][]byte{frame(finClose, closePayload(1015, ""), true)}, 1002},
		{"close code 2999", [][]byte{frame(finClose, closePayload(2999, ""), true)}, 1002},
		{"close code 5000", [][]byte{frame(finClose, closePayload(5000, ""), true)}, 1002},
		{"close code 0", [][]byte{frame(finClose, closePayload(0, ""), true)}, 1002},
		{"close code 1004", [][]byte{frame(finClose, closePayload(1004, ""), true)}, 1002},
		{"close code 1016", [][]byte{frame(finClose, closePayload(1016, ""), true)}, 1002},
		{"close code 2000", [][]byte{frame(finClose, closePayload(2000, "x"), true)}, 1002},
		{"close code 65535", [][]byte{frame(finClose, closePayload(65535, ""), true)}, 1002},
		// gorilla reports a one-byte close payload as no status.
		{"one-byte close payload", [][]byte{frame(finClose, []byte{3}, true)}, 1002},
		{"one-byte close payload after messages", [][]byte{
			frame(finPing, []byte("p"), true), frame(text, []byte(`"`+strings.Repeat("a", 300)), true),
			frame(finCont, []byte(`"`), true), frame(finClose, []byte{0x03}, true)}, 1002},
		{"one-byte close payload, unmasked length 1 elsewhere", [][]byte{frame(finPing, []byte("1"), true), frame(finClose, nil, true)}, 1005},
		{"invalid utf-8 in close reason", [][]byte{frame(finClose, closePayload(1000, "\xff"), true)}, 1002},
		{"invalid utf-8 in text", [][]byte{frame(finText, []byte("\"\xc3\x28\""), true)}, 1007},
		{"invalid utf-8 across fragments", [][]byte{frame(text, []byte("\"\xe2\x82"), true), frame(finCont, []byte("\x28\""), true)}, 1007},
		{"binary", [][]byte{frame(finBin, []byte{1, 2}, true)}, 1003},
		{"empty close echoed", [][]byte{frame(finClose, nil, true)}, 1005},
		{"close 3000 echoed", [][]byte{frame(finClose, closePayload(3000, "ok"), true)}, 3000},
		{"fragments over the size limit together", [][]byte{frame(text, []byte(`"`+strings.Repeat("a", 40<<10)), true), frame(finCont, []byte(strings.Repeat("a", 40<<10)+`"`), true)}, 1009},
		{"huge declared length", [][]byte{append([]byte{finText, 0x80 | 127}, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4)}, 1009},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, br := rawConn(t, f, "user.ada")
			for _, fr := range tt.frames {
				_, err := nc.Write(fr)
				require.NoError(t, err)
			}
			assert.Equal(t, tt.want, readClose(t, nc, br))
			_ = nc.Close()
		})
	}
	t.Run("valid fragmented message is answered", func(t *testing.T) {
		nc, br := rawConn(t, f, "user.ada")
		msg := `{"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"s":"é"}}`
		cut := strings.Index(msg, "é") + 1 // inside the two-byte rune
		for _, fr := range [][]byte{frame(text, []byte(msg[:cut]), true), frame(finPing, []byte("p"), true), frame(finCont, []byte(msg[cut:]), true)} {
			_, err := nc.Write(fr)
			require.NoError(t, err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		for !strings.Contains(string(got), `"status_code":0`) {
			b := make([]byte, 512)
			n, err := br.Read(b)
			require.NoError(t, err)
			got = append(got, b[:n]...)
		}
		assert.Contains(t, string(got), `"data":{"s":"é"}`)
		_, err := nc.Write(frame(finClose, closePayload(1000, ""), true))
		require.NoError(t, err)
		assert.Equal(t, 1000, readClose(t, nc, br))
	})
	t.Run("one-byte close payload before the auth frame", func(t *testing.T) {
		nc, br := rawConn(t, f, "")
		_, err := nc.Write(frame(finClose, []byte{0xe8}, true))
		require.NoError(t, err)
		assert.Equal(t, 1002, readClose(t, nc, br))
	})
	t.Run("ping answered with pong", func(t *testing.T) {
		nc, br := rawConn(t, f, "user.ada")
		_, err := nc.Write(frame(finPing, []byte("hi"), true))
		require.NoError(t, err)
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var h [4]byte
		_, err = io.ReadFull(br, h[:])
		require.NoError(t, err)
		assert.Equal(t, []byte{0x8a, 2, 'h', 'i'}, h[:])
	})
	eventually(t, func() bool { return f.e.ActiveConnections() == 0 }, "every connection freed")
}
