package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
)

// reply is one answer read from the server.
type reply struct {
	id      uint64
	matched bool   // the id is one of this connection's
	status  int    // pkgroute status_code; centrifuge: 0, or 1 for an error reply
	code    string // the error code of a failed reply
}

// codec speaks one wire protocol on one connection. Its methods are
// called by one goroutine at a time: handshake before the connection is
// used, appendRequest by the writer, parse by the reader.
type codec interface {
	// handshake authenticates an upgraded connection when the protocol
	// needs a message for it.
	handshake(ctx context.Context, ws *websocket.Conn, token string) error
	// appendRequest appends the request frame numbered id to dst.
	appendRequest(dst []byte, id uint64) []byte
	// parse calls fn for each reply in frame; it returns a frame to send
	// back (a pong) or nil.
	parse(frame []byte, fn func(reply)) []byte
}

func newCodec(cfg *LoadConfig, seed [8]byte) codec {
	if cfg.Protocol == ProtocolCentrifuge {
		return newCentrifugeCodec(cfg)
	}
	return newPkgrouteCodec(cfg, seed)
}

// handshakeError is a refusal during the handshake, named for the report.
type handshakeError struct {
	key string // e.g. "http 401", "close 4001"
	err error
}

func (e *handshakeError) Error() string { return e.key + ": " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// readOne reads one message within ctx's deadline.
func readOne(ctx context.Context, ws *websocket.Conn) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(d)
		defer func() { _ = ws.SetReadDeadline(time.Time{}) }()
	}
	_, msg, err := ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return nil, &handshakeError{key: "close " + strconv.Itoa(ce.Code), err: err}
		}
		return nil, err
	}
	return msg, nil
}

// pkgrouteCodec speaks docs/protocol.md. Request ids are UUIDs whose
// first 8 bytes are the connection's (random, version 4) and whose last 8
// carry the request number (variant bits set), so that a reply's req_id
// gives the number back without a lookup table.
type pkgrouteCodec struct {
	auth   string
	prefix [18]byte // "xxxxxxxx-xxxx-4xxx"
	head   []byte   // {"pkg_id":N,"req_id":"
	tail   []byte   // ","data":DATA}
}

func newPkgrouteCodec(cfg *LoadConfig, seed [8]byte) *pkgrouteCodec {
	seed[6] = 0x40 | seed[6]&0x0f
	c := &pkgrouteCodec{auth: cfg.Auth}
	hex.Encode(c.prefix[0:8], seed[0:4])
	c.prefix[8] = '-'
	hex.Encode(c.prefix[9:13], seed[4:6])
	c.prefix[13] = '-'
	hex.Encode(c.prefix[14:18], seed[6:8])
	c.head = fmt.Appendf(nil, `{"pkg_id":%d,"req_id":"`, cfg.PkgID)
	c.tail = append(append([]byte(`","data":`), cfg.Data...), '}')
	return c
}

const idMask = 1<<62 - 1

func (c *pkgrouteCodec) appendUUID(dst []byte, id uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id&idMask|1<<63)
	dst = append(dst, c.prefix[:]...)
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[0:2])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[2:8])
}

// idOf returns the request number of one of this connection's UUIDs.
func (c *pkgrouteCodec) idOf(u []byte) (uint64, bool) {
	if len(u) != 36 || !bytes.Equal(u[:18], c.prefix[:]) || u[18] != '-' || u[23] != '-' {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[0:2], u[19:23]); err != nil {
		return 0, false
	}
	if _, err := hex.Decode(b[2:8], u[24:36]); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:]) & idMask, true
}

// writeOne writes one text message within ctx's deadline.
func writeOne(ctx context.Context, ws *websocket.Conn, frame []byte) error {
	if d, ok := ctx.Deadline(); ok {
		_ = ws.SetWriteDeadline(d)
		defer func() { _ = ws.SetWriteDeadline(time.Time{}) }()
	}
	return ws.WriteMessage(websocket.TextMessage, frame)
}

func (c *pkgrouteCodec) handshake(ctx context.Context, ws *websocket.Conn, token string) error {
	if c.auth != AuthFirstMessage {
		return nil
	}
	frame, _ := json.Marshal(map[string]string{"type": "auth", "token": "Bearer " + token})
	if err := writeOne(ctx, ws, frame); err != nil {
		return err
	}
	msg, err := readOne(ctx, ws)
	if err != nil {
		return err
	}
	var ok struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(msg, &ok) != nil || ok.Type != "auth_ok" {
		return &handshakeError{key: "no auth_ok", err: fmt.Errorf("first answer: %.80s", msg)}
	}
	return nil
}

func (c *pkgrouteCodec) appendRequest(dst []byte, id uint64) []byte {
	dst = append(dst, c.head...)
	dst = c.appendUUID(dst, id)
	return append(dst, c.tail...)
}

var (
	keyReqID         = []byte(`"req_id":"`)
	keyStatusAfterID = []byte(`","status_code":`)
)

// parse reads a reply by its req_id and status_code members, the reply
// envelope's second and third keys (docs/protocol.md fixes their order);
// auth_ok frames and pushes (no status_code) are skipped.
func (c *pkgrouteCodec) parse(frame []byte, fn func(reply)) []byte {
	i := bytes.Index(frame, keyReqID)
	if i < 0 || len(frame) < i+len(keyReqID)+37 {
		return nil
	}
	u := frame[i+len(keyReqID) : i+len(keyReqID)+36]
	rest := frame[i+len(keyReqID)+36:]
	// A reply's status_code follows its req_id; a push has none.
	if !bytes.HasPrefix(rest, keyStatusAfterID) {
		return nil
	}
	digits := rest[len(keyStatusAfterID):]
	status, n := 0, 0
	for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
		status = status*10 + int(digits[n]-'0')
		n++
	}
	if n == 0 {
		status = -1
	}
	r := reply{status: status}
	r.id, r.matched = c.idOf(u)
	if status != 0 {
		var body struct {
			Data struct {
				Code string `json:"code"`
			} `json:"data"`
		}
		_ = json.Unmarshal(frame, &body)
		r.code = body.Data.Code
		if r.code == "" {
			r.code = "unknown"
		}
	}
	fn(r)
	return nil
}

// centrifugeCodec speaks centrifuge's JSON protocol (client protocol v2):
// a connect command with id 1, then rpc commands; replies may be batched
// in one frame, one per line; an empty reply is a server ping, answered
// with an empty command when the connect result asked for pongs.
type centrifugeCodec struct {
	auth string
	pong bool
	head []byte // ,"rpc":{...,"data":
	tail []byte
}

func newCentrifugeCodec(cfg *LoadConfig) *centrifugeCodec {
	c := &centrifugeCodec{auth: cfg.Auth}
	c.head = []byte(`,"rpc":{`)
	if cfg.Method != "" {
		m, _ := json.Marshal(cfg.Method)
		c.head = append(append(append(c.head, `"method":`...), m...), ',')
	}
	c.head = append(c.head, `"data":`...)
	c.tail = append(append(c.tail, cfg.Data...), `}}`...)
	return c
}

// Request ids: 1 is the connect command; rpc n has id n+2 (uint32 wraps).
func centrifugeID(id uint64) uint32 { return uint32(id + 2) }

func (c *centrifugeCodec) handshake(ctx context.Context, ws *websocket.Conn, token string) error {
	connect := map[string]any{"name": "pkgroute-load"}
	if token != "" && c.auth != AuthNone {
		connect["token"] = token
	}
	frame, _ := json.Marshal(map[string]any{"id": 1, "connect": connect})
	if err := writeOne(ctx, ws, frame); err != nil {
		return err
	}
	for {
		msg, err := readOne(ctx, ws)
		if err != nil {
			return err
		}
		for line := range bytes.SplitSeq(msg, []byte("\n")) {
			var r struct {
				ID    uint32 `json:"id"`
				Error *struct {
					Code    uint32 `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
				Connect *struct {
					Pong bool `json:"pong"`
				} `json:"connect"`
			}
			if json.Unmarshal(line, &r) != nil || r.ID != 1 {
				continue
			}
			if r.Error != nil {
				return &handshakeError{key: fmt.Sprintf("connect error %d", r.Error.Code), err: errors.New(r.Error.Message)}
			}
			if r.Connect == nil {
				return &handshakeError{key: "no connect result", err: fmt.Errorf("answer: %.80s", line)}
			}
			c.pong = r.Connect.Pong
			return nil
		}
	}
}

func (c *centrifugeCodec) appendRequest(dst []byte, id uint64) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, uint64(centrifugeID(id)), 10)
	dst = append(dst, c.head...)
	return append(dst, c.tail...)
}

var (
	keyID    = []byte(`{"id":`)
	keyError = []byte(`,"error":`)
)

func (c *centrifugeCodec) parse(frame []byte, fn func(reply)) []byte {
	var pong []byte
	for line := range bytes.SplitSeq(frame, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if bytes.Equal(line, []byte("{}")) {
			if c.pong {
				pong = []byte("{}")
			}
			continue
		}
		var id uint64
		isErr := false
		if bytes.HasPrefix(line, keyID) {
			rest := line[len(keyID):]
			n := 0
			for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
				id = id*10 + uint64(rest[n]-'0')
				n++
			}
			isErr = bytes.HasPrefix(rest[n:], keyError)
		} else {
			var r struct {
				ID    uint64          `json:"id"`
				Error json.RawMessage `json:"error"`
			}
			if json.Unmarshal(line, &r) != nil {
				continue
			}
			id, isErr = r.ID, len(r.Error) > 0
		}
		if id == 0 {
			continue // a push
		}
		r := reply{id: uint64(uint32(id - 2)), matched: id != 1}
		if isErr {
			var e struct {
				Error struct {
					Code uint32 `json:"code"`
				} `json:"error"`
			}
			_ = json.Unmarshal(line, &e)
			r.status, r.code = 1, "centrifuge_"+strconv.FormatUint(uint64(e.Error.Code), 10)
		}
		fn(r)
	}
	return pong
}
