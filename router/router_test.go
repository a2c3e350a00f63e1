package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type pkg int32

const (
	pkgEcho      pkg = 1
	pkgCreate    pkg = 3
	pkgFail      pkg = 5
	pkgPanic     pkg = 6
	pkgSlow      pkg = 7
	pkgPublic    pkg = 8
	pkgTyped     pkg = 9
	pkgPaged     pkg = 11
	pkgBigNumber pkg = 12
	pkgBadOutput pkg = 13
	pkgBadData   pkg = 14
	pkgMetaOnly  pkg = 15
)

const rid = "5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a"

var (
	writer = &auth.Principal{ID: "u1", Username: "writer", Roles: []string{"get-authors", "create-author"}}
	reader = &auth.Principal{ID: "u2", Username: "reader", Roles: []string{"get-authors"}}
)

type reply struct {
	PkgID      int64           `json:"pkg_id"`
	ReqID      string          `json:"req_id"`
	StatusCode int             `json:"status_code"`
	Meta       json.RawMessage `json:"meta"`
	Data       json.RawMessage `json:"data"`
}

type errData struct {
	Code         string   `json:"code"`
	Msg          string   `json:"msg"`
	Details      []Detail `json:"details"`
	RetryAfterMS *int64   `json:"retry_after_ms"`
}

const createSchema = `{"type":"object","properties":{"name":{"type":"string","minLength":1,"maxLength":200}},"required":["name"],"additionalProperties":false}`

type createIn struct {
	Name string `json:"name"`
}

type page struct {
	items []int
	meta  Metadata
}

func (p page) PageItems() any { return p.items }
func (p page) PageMeta() any  { return p.meta }

// explodes panics when encoded, with a message that must not reach callers.
type explodes struct{}

func (explodes) MarshalJSON() ([]byte, error) { panic("secret marshal state") }

// newTestRouter registers one package per pipeline outcome. calls counts
// the handler invocations.
func newTestRouter(t *testing.T, calls *atomic.Int64) *PackageRouter[pkg] {
	t.Helper()
	r := New[pkg](Config{})
	count := func() { calls.Add(1) }
	r.Register(pkgEcho, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		count()
		return Response{Data: req.Data}
	}), Authenticated())
	Handle(r, pkgCreate, func(ctx context.Context, in createIn) (map[string]any, error) {
		count()
		if in.Name == "taken" {
			return nil, fmt.Errorf("author %q: %w", in.Name, ErrConflict)
		}
		return map[string]any{"id": 7, "name": in.Name}, nil
	}, Roles("create-author"), Schema(createSchema), Name("CREATE_AUTHOR"))
	Handle(r, pkgFail, func(ctx context.Context, in struct {
		Mode string `json:"mode"`
	}) (struct{}, error) {
		count()
		switch in.Mode {
		case "not_found":
			return struct{}{}, fmt.Errorf("author 9: %w", ErrNotFound)
		case "unavailable":
			return struct{}{}, unavailable{}
		case "typed":
			return struct{}{}, &Error{Status: StatusInvalidData, Code: "custom", Msg: "custom message"}
		}
		return struct{}{}, errors.New("secret database password leaked")
	}, Roles("get-authors"))
	r.Register(pkgPanic, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		count()
		panic("boom")
	}), Public())
	r.Register(pkgSlow, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		count()
		<-ctx.Done()
		return Fail(ctx.Err())
	}), Public(), Timeout(30*time.Millisecond))
	r.Register(pkgPublic, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		count()
		return Response{Data: map[string]string{"ok": "yes"}}
	}), Public())
	Handle(r, pkgPaged, func(ctx context.Context, in struct{}) (page, error) {
		count()
		next := "abc"
		return page{items: []int{1, 2}, meta: Metadata{Page: 1, PerPage: 2, NextCursor: &next, HasMore: true}}, nil
	}, Roles("get-authors"), Paginated())
	r.Register(pkgBigNumber, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		count()
		return Response{Data: req.Data}
	}), Public(), Schema(`{"type":"object","properties":{"n":{"type":"number","minimum":5}}}`))
	Handle(r, pkgBadOutput, func(ctx context.Context, in struct{}) (explodes, error) {
		count()
		return explodes{}, nil
	}, Public())
	r.Register(pkgBadData, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		count()
		return Response{Data: map[string]any{"ok": true, "bad": explodes{}}}
	}), Public())
	r.Register(pkgMetaOnly, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		count()
		return Response{Data: []int{1}, Meta: Metadata{Page: 1}}
	}), Public())
	return r
}

type unavailable struct{}

func (unavailable) Error() string             { return "identity provider unavailable" }
func (unavailable) ErrorKind() errkind.Kind   { return errkind.Unavailable }
func (unavailable) RetryAfter() time.Duration { return 1500 * time.Millisecond }

func decode(t *testing.T, b []byte) (reply, errData) {
	t.Helper()
	var rep reply
	require.NoError(t, json.Unmarshal(b, &rep), "reply %s", b)
	var e errData
	if rep.StatusCode != 0 {
		require.NoError(t, json.Unmarshal(rep.Data, &e), "error data %s", rep.Data)
	}
	return rep, e
}

func env(pkgID any, data string) string {
	if data == "" {
		return fmt.Sprintf(`{"pkg_id":%v,"req_id":%q}`, pkgID, rid)
	}
	return fmt.Sprintf(`{"pkg_id":%v,"req_id":%q,"method":"","data":%s}`, pkgID, rid, data)
}

func TestDispatchTable(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
	tests := []struct {
		name      string
		caller    *auth.Principal
		in        string
		status    int
		code      string
		msg       string // exact when set
		pkgID     int64
		reqID     string
		handled   bool // the handler ran
		data      string
		meta      string
		details   []Detail
		retryMS   int64
		checkBody func(t *testing.T, e errData)
	}{
		{name: "ok echo", caller: reader, in: env(1, `{"x":[1,{"y":null}]}`), status: 0, pkgID: 1, reqID: rid, handled: true, data: `{"x":[1,{"y":null}]}`, meta: "null"},
		{name: "data absent is empty object", caller: reader, in: env(1, ""), status: 0, pkgID: 1, reqID: rid, handled: true, data: `{}`},
		{name: "data null is empty object", caller: reader, in: env(1, "null"), status: 0, pkgID: 1, reqID: rid, handled: true, data: `{}`},
		{name: "upper-case req_id is echoed lower-case", caller: reader, in: `{"pkg_id":1,"req_id":"5B0C2F0E-8F3E-4A58-9C1B-2F7F4F1E9D3A"}`, status: 0, pkgID: 1, reqID: rid, handled: true},
		{name: "method is ignored", caller: reader, in: `{"pkg_id":1,"req_id":"` + rid + `","method":"anything"}`, status: 0, pkgID: 1, reqID: rid, handled: true},
		{name: "method null", caller: reader, in: `{"pkg_id":1,"req_id":"` + rid + `","method":null}`, status: 0, pkgID: 1, reqID: rid, handled: true},

		{name: "not JSON", caller: reader, in: `hello`, status: 2, code: "invalid_request", pkgID: 0, reqID: zeroUUID},
		{name: "empty", caller: reader, in: ``, status: 2, code: "invalid_request", reqID: zeroUUID},
		{name: "array", caller: reader, in: `[1]`, status: 2, code: "invalid_request", reqID: zeroUUID},
		{name: "truncated", caller: reader, in: `{"pkg_id":1,"req_id":"` + rid + `"`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "trailing data", caller: reader, in: env(1, `{}`) + `{}`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "trailing garbage", caller: reader, in: env(1, `{}`) + ` x`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "trailing white space is fine", caller: reader, in: env(1, `{}`) + " \n", status: 0, pkgID: 1, reqID: rid, handled: true},
		{name: "unknown field", caller: reader, in: `{"pkg_id":1,"req_id":"` + rid + `","extra":1}`, status: 2, code: "invalid_request", msg: `unknown field "extra"`, pkgID: 1, reqID: rid},
		{name: "case-variant key", caller: reader, in: `{"pkg_id":1,"req_id":"` + rid + `","PKG_ID":2}`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "case-variant key only", caller: reader, in: `{"Pkg_Id":1,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", pkgID: 0, reqID: rid},
		{name: "duplicate top-level key", caller: reader, in: `{"pkg_id":1,"pkg_id":3,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", msg: `duplicate key "pkg_id"`, pkgID: 1, reqID: rid},
		{name: "duplicate nested key", caller: reader, in: env(1, `{"a":{"b":1,"b":2}}`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "duplicate key in array element", caller: reader, in: env(1, `{"a":[{"b":1},{"c":1,"c":1}]}`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "duplicate key via escape", caller: reader, in: env(1, `{"ab":1,"a\u0062":2}`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "same key in sibling objects is fine", caller: reader, in: env(1, `{"a":{"b":1},"c":{"b":1}}`), status: 0, pkgID: 1, reqID: rid, handled: true},
		{name: "duplicate among many keys", caller: reader, in: env(1, manyKeys(40, true)), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "many distinct keys", caller: reader, in: env(1, manyKeys(40, false)), status: 0, pkgID: 1, reqID: rid, handled: true},
		{name: "pkg_id missing", caller: reader, in: `{"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", msg: "pkg_id is required", reqID: rid},
		{name: "pkg_id string", caller: reader, in: `{"pkg_id":"1","req_id":"` + rid + `"}`, status: 2, code: "invalid_request", pkgID: 0, reqID: rid},
		{name: "pkg_id float", caller: reader, in: `{"pkg_id":1.5,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", pkgID: 0, reqID: rid},
		{name: "pkg_id out of range", caller: reader, in: `{"pkg_id":4294967297,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", pkgID: 0, reqID: rid},
		{name: "req_id missing", caller: reader, in: `{"pkg_id":1}`, status: 2, code: "invalid_request", msg: "req_id is required", pkgID: 1, reqID: zeroUUID},
		{name: "req_id not a UUID", caller: reader, in: `{"pkg_id":1,"req_id":"abc"}`, status: 2, code: "invalid_request", pkgID: 1, reqID: zeroUUID},
		{name: "req_id number", caller: reader, in: `{"pkg_id":1,"req_id":5}`, status: 2, code: "invalid_request", pkgID: 1, reqID: zeroUUID},
		{name: "req_id with braces", caller: reader, in: `{"pkg_id":1,"req_id":"{` + rid + `}"}`, status: 2, code: "invalid_request", pkgID: 1, reqID: zeroUUID},
		{name: "req_id nil UUID", caller: reader, in: `{"pkg_id":1,"req_id":"00000000-0000-0000-0000-000000000000"}`, status: 2, code: "invalid_request", pkgID: 1, reqID: zeroUUID},
		{name: "data array", caller: reader, in: env(1, `[1]`), status: 2, code: "invalid_request", msg: "data must be a JSON object", pkgID: 1, reqID: rid},
		{name: "data string", caller: reader, in: env(1, `"x"`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "method number", caller: reader, in: `{"pkg_id":1,"req_id":"` + rid + `","method":1}`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "101 digits", caller: reader, in: env(1, `{"n":`+strings.Repeat("1", 101)+`}`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "100 digits are fine", caller: reader, in: env(1, `{"n":`+strings.Repeat("1", 100)+`}`), status: 0, pkgID: 1, reqID: rid, handled: true},
		{name: "long fraction", caller: reader, in: env(1, `{"n":1.`+strings.Repeat("0", 100)+`}`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "huge exponent", caller: reader, in: env(12, `{"n":1e100000000}`), status: 2, code: "invalid_request", pkgID: 12, reqID: rid},
		{name: "exponent 401", caller: reader, in: env(12, `{"n":1e401}`), status: 2, code: "invalid_request", pkgID: 12, reqID: rid},
		{name: "exponent -401", caller: reader, in: env(12, `{"n":1E-401}`), status: 2, code: "invalid_request", pkgID: 12, reqID: rid},
		{name: "exponent 400 reaches the schema", caller: reader, in: env(12, `{"n":1e400}`), status: 0, pkgID: 12, reqID: rid, handled: true},
		{name: "900k digit number", caller: reader, in: env(12, `{"n":`+strings.Repeat("9", 900000)+`}`), status: 2, code: "invalid_request", pkgID: 12, reqID: rid},
		{name: "huge number in pkg_id", caller: reader, in: `{"pkg_id":1e999,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", reqID: rid},
		{name: "101-digit pkg_id", caller: reader, in: `{"pkg_id":` + strings.Repeat("1", 101) + `,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", reqID: rid},
		{name: "fields after a duplicate key are echoed", caller: reader, in: `{"data":{"a":1,"a":2},"pkg_id":1,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", msg: `duplicate key "a"`, pkgID: 1, reqID: rid},
		{name: "fields after a huge exponent are echoed", caller: reader, in: `{"pkg_id":12,"data":{"n":1e401},"req_id":"` + strings.ToUpper(rid) + `"}`, status: 2, code: "invalid_request", pkgID: 12, reqID: rid},
		{name: "fields after deep nesting are echoed", caller: reader, in: `{"data":` + deep + `,"req_id":"` + rid + `","pkg_id":1}`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "fields after very deep nesting are echoed", caller: reader, in: `{"data":{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `},"pkg_id":1,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "fields after brackets in strings are echoed", caller: reader, in: `{"data":{"a":"]}\"[{","a":1},"pkg_id":1,"req_id":"` + rid + `"}`, status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "invalid fields after a refused part stay unechoed", caller: reader, in: `{"data":{"a":1,"a":2},"pkg_id":"1","req_id":"x"}`, status: 2, code: "invalid_request", reqID: zeroUUID},
		{name: "nothing echoed from broken JSON", caller: reader, in: `{"data":{"a":1,"a":2},"pkg_id":1,"req_id":"` + rid + `"`, status: 2, code: "invalid_request", reqID: zeroUUID},
		{name: "too deep", caller: reader, in: env(1, deep), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "invalid UTF-8", caller: reader, in: env(1, "{\"a\":\"\xff\"}"), status: 2, code: "invalid_request", pkgID: 0, reqID: zeroUUID},
		{name: "control character in string", caller: reader, in: env(1, "{\"a\":\"\x01\"}"), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "bad escape", caller: reader, in: env(1, `{"a":"\x"}`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},
		{name: "leading zero", caller: reader, in: env(1, `{"a":01}`), status: 2, code: "invalid_request", pkgID: 1, reqID: rid},

		{name: "unknown package", caller: writer, in: env(99, `{}`), status: 1, code: "unknown_package", msg: "No handler found for pkg_id 99", pkgID: 99, reqID: rid},
		{name: "missing role before schema", caller: reader, in: env(3, `{"name":""}`), status: 3, code: "permission_denied", msg: "No permission for pkg_id 3", pkgID: 3, reqID: rid},
		{name: "anonymous on authenticated package", caller: nil, in: env(1, `{}`), status: 3, code: "permission_denied", pkgID: 1, reqID: rid},
		{name: "anonymous on public package", caller: nil, in: env(8, `{}`), status: 0, pkgID: 8, reqID: rid, handled: true, data: `{"ok":"yes"}`},
		{name: "schema failure", caller: writer, in: env(3, `{"name":""}`), status: 2, code: "invalid_data", msg: "data does not match the schema of pkg_id 3", pkgID: 3, reqID: rid,
			details: []Detail{{Path: "/name", Msg: "minLength: got 0, want 1"}}},
		{name: "schema required", caller: writer, in: env(3, `{}`), status: 2, code: "invalid_data", pkgID: 3, reqID: rid,
			details: []Detail{{Path: "/name", Msg: "required property is missing"}}},
		{name: "schema additional property", caller: writer, in: env(3, `{"name":"a","zz":1}`), status: 2, code: "invalid_data", pkgID: 3, reqID: rid,
			details: []Detail{{Path: "/zz", Msg: "additional property is not allowed"}}},
		{name: "schema type", caller: writer, in: env(3, `{"name":12345}`), status: 2, code: "invalid_data", pkgID: 3, reqID: rid,
			details: []Detail{{Path: "/name", Msg: "got number, want string"}}},
		{name: "schema minimum does not echo the value", caller: writer, in: env(12, `{"n":1.23456}`), status: 2, code: "invalid_data", pkgID: 12, reqID: rid,
			details: []Detail{{Path: "/n", Msg: "minimum: want >= 5"}}},
		{name: "typed create", caller: writer, in: env(3, `{"name":"Ada"}`), status: 0, pkgID: 3, reqID: rid, handled: true, data: `{"id":7,"name":"Ada"}`},
		{name: "conflict", caller: writer, in: env(3, `{"name":"taken"}`), status: 2, code: "conflict", msg: `author "taken": conflict`, pkgID: 3, reqID: rid, handled: true},
		{name: "not found", caller: reader, in: env(5, `{"mode":"not_found"}`), status: 1, code: "not_found", msg: "author 9: not found", pkgID: 5, reqID: rid, handled: true},
		{name: "unavailable with retry", caller: reader, in: env(5, `{"mode":"unavailable"}`), status: 1, code: "service_unavailable", pkgID: 5, reqID: rid, handled: true, retryMS: 1500},
		{name: "typed error passes through", caller: reader, in: env(5, `{"mode":"typed"}`), status: 2, code: "custom", msg: "custom message", pkgID: 5, reqID: rid, handled: true},
		{name: "unknown error does not leak", caller: reader, in: env(5, `{"mode":"x"}`), status: 1, code: "internal_error", msg: "Internal server error", pkgID: 5, reqID: rid, handled: true},
		{name: "typed decode refuses unknown field without schema", caller: reader, in: env(5, `{"other":1}`), status: 2, code: "invalid_data", pkgID: 5, reqID: rid},
		{name: "typed decode type mismatch", caller: reader, in: env(5, `{"mode":5}`), status: 2, code: "invalid_data", pkgID: 5, reqID: rid},
		{name: "panic", caller: nil, in: env(6, `{}`), status: 1, code: "internal_error", msg: "Internal server error", pkgID: 6, reqID: rid, handled: true},
		{name: "timeout", caller: nil, in: env(7, `{}`), status: 1, code: "timeout", pkgID: 7, reqID: rid, handled: true},
		{name: "paginated", caller: reader, in: env(11, `{}`), status: 0, pkgID: 11, reqID: rid, handled: true, data: `[1,2]`,
			meta: `{"page":1,"per_page":2,"total":0,"pages":0,"next_cursor":"abc","has_more":true}`},
		{name: "meta is null when the package is not paginated", caller: nil, in: env(15, `{}`), status: 0, pkgID: 15, reqID: rid, handled: true, data: `[1]`, meta: "null"},
		{name: "typed output panics while encoding", caller: nil, in: env(13, `{}`), status: 1, code: "internal_error", msg: "Internal server error", pkgID: 13, reqID: rid, handled: true},
		{name: "raw data panics while encoding", caller: nil, in: env(14, `{}`), status: 1, code: "internal_error", msg: "Internal server error", pkgID: 14, reqID: rid, handled: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			r := newTestRouter(t, &calls)
			out := r.Dispatch(context.Background(), tc.caller, []byte(tc.in))
			rep, e := decode(t, out)
			assert.Equal(t, tc.status, rep.StatusCode, "reply %s", out)
			assert.Equal(t, tc.pkgID, rep.PkgID)
			assert.Equal(t, tc.reqID, rep.ReqID)
			if tc.handled {
				assert.EqualValues(t, 1, calls.Load(), "handler calls")
			} else {
				assert.EqualValues(t, 0, calls.Load(), "handler must not run")
			}
			if tc.status != 0 {
				assert.Equal(t, tc.code, e.Code)
				assert.NotEmpty(t, e.Msg)
				if tc.msg != "" {
					assert.Equal(t, tc.msg, e.Msg)
				}
				if tc.details != nil {
					assert.Equal(t, tc.details, e.Details)
				}
				if tc.retryMS != 0 {
					require.NotNil(t, e.RetryAfterMS)
					assert.Equal(t, tc.retryMS, *e.RetryAfterMS)
				}
				assert.NotContains(t, string(out), "secret")
				assert.Equal(t, "null", string(rep.Meta))
			}
			if tc.data != "" {
				assert.JSONEq(t, tc.data, string(rep.Data))
			}
			if tc.meta != "" {
				assert.Equal(t, tc.meta, string(rep.Meta))
			}
			assert.True(t, strings.HasPrefix(string(out), `{"pkg_id":`), "key order: %s", out)
			assertKeyOrder(t, out)
		})
	}
}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

func manyKeys(n int, dup bool) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	if dup {
		b.WriteString(`,"k3":0`)
	}
	b.WriteByte('}')
	return b.String()
}

func assertKeyOrder(t *testing.T, out []byte) {
	t.Helper()
	s := string(out)
	idx := []int{
		strings.Index(s, `"pkg_id":`), strings.Index(s, `,"req_id":`), strings.Index(s, `,"status_code":`),
		strings.Index(s, `,"meta":`), strings.Index(s, `,"data":`),
	}
	for i := 1; i < len(idx); i++ {
		assert.Greater(t, idx[i], idx[i-1], "keys out of order in %s", s)
	}
}

func TestRegistrationMistakesPanic(t *testing.T) {
	noop := HandlerFunc[pkg](func(context.Context, *Request[pkg]) Response { return Response{} })
	r := New[pkg](Config{})
	r.Register(1, noop, Public())
	assert.PanicsWithValue(t, "router: pkg_id 1 registered twice (PKG_1 and PKG_1)", func() { r.Register(1, noop, Public()) })
	assert.Panics(t, func() { r.Register(2, noop) }, "no access declared")
	assert.Panics(t, func() { r.Register(3, noop, Roles()) }, "empty roles")
	assert.Panics(t, func() { r.Register(4, noop, Public(), Schema(`{"type": 12}`)) }, "invalid schema")
	assert.Panics(t, func() { r.Register(5, noop, Public(), Schema(`{not json`)) }, "schema not JSON")
	assert.Panics(t, func() { r.Register(6, nil, Public()) }, "nil handler")
	r.DeclarePush(100, Roles("a"))
	assert.PanicsWithValue(t, "router: push pkg_id 100 declared twice", func() { r.DeclarePush(100, Public()) })
	assert.Panics(t, func() { r.DeclarePush(101) }, "push without access")
	assert.Panics(t, func() { r.DeclarePush(102, Roles()) }, "push with empty roles")
	assert.Panics(t, func() { r.DeclarePush(103, Public(), Schema(`{"type": 12}`)) }, "push with an invalid schema")

	// Exactly one access option: a mix is refused, whatever the order.
	assert.PanicsWithValue(t, "router: pkg_id 7 (PKG_7): conflicting access options router.Roles, router.Public; declare exactly one",
		func() { r.Register(7, noop, Roles("admin"), Public()) })
	assert.Panics(t, func() { r.Register(8, noop, Public(), Roles("admin")) }, "public then roles")
	assert.Panics(t, func() { r.Register(9, noop, Authenticated(), Public()) }, "authenticated and public")
	assert.Panics(t, func() { r.Register(10, noop, Roles("admin"), Authenticated()) }, "roles and authenticated")
	assert.Panics(t, func() { r.Register(11, noop, Roles(), Public()) }, "empty roles and public")
	ok := func(context.Context, struct{}) (struct{}, error) { return struct{}{}, nil }
	assert.PanicsWithValue(t, "router: pkg_id 12 (PKG_12): conflicting access options router.Authenticated, router.Public; declare exactly one",
		func() { Handle(r, 12, ok, Public(), Authenticated()) })
	assert.PanicsWithValue(t, "router: push pkg_id 104 (PKG_104): conflicting access options router.Roles, router.Authenticated; declare exactly one",
		func() { r.DeclarePush(104, Authenticated(), Roles("a")) })
	for _, id := range []pkg{7, 8, 9, 10, 11, 12} {
		assert.Nil(t, r.Route(id), "pkg %d must not be registered", id)
	}
	assert.Nil(t, r.Push(104))

	// Repeating one access option is not a conflict: roles add up.
	r.Register(13, noop, Roles("a"), Roles("b"))
	assert.Equal(t, []string{"a", "b"}, r.Route(13).Roles)
	r.Register(14, noop, Public(), Public())
	assert.Equal(t, AccessPublic, r.Route(14).Access)

	// A typed output that is a page needs Paginated.
	pageOf := func(context.Context, struct{}) (page, error) { return page{}, nil }
	assert.PanicsWithValue(t, "router: pkg_id 15: output router.page is a page (router.Paged); register it with router.Paginated()",
		func() { Handle(r, 15, pageOf, Public()) })
	assert.Panics(t, func() {
		Handle(r, 16, func(context.Context, struct{}) (*page, error) { return nil, nil }, Public())
	}, "pointer to a page without Paginated")
	Handle(r, 17, pageOf, Public(), Paginated())
	assert.True(t, r.Route(17).Paginated)
}

func TestSchemaForms(t *testing.T) {
	noop := HandlerFunc[pkg](func(context.Context, *Request[pkg]) Response { return Response{} })
	r := New[pkg](Config{})
	doc := `{"type":"object","required":["a"]}`
	r.Register(1, noop, Public(), Schema(doc))
	r.Register(2, noop, Public(), Schema([]byte(doc)))
	r.Register(3, noop, Public(), Schema(json.RawMessage(doc)))
	r.Register(4, noop, Public(), Schema(map[string]any{"type": "object", "required": []string{"a"}}))
	for id := pkg(1); id <= 4; id++ {
		out := r.Dispatch(context.Background(), nil, []byte(env(int(id), `{}`)))
		rep, e := decode(t, out)
		assert.Equal(t, 2, rep.StatusCode, "pkg %d", id)
		assert.Equal(t, "invalid_data", e.Code)
	}
}

func TestRoutesAndVerifyAll(t *testing.T) {
	var calls atomic.Int64
	r := newTestRouter(t, &calls)
	routes := r.Routes()
	require.Len(t, routes, 11)
	assert.Equal(t, pkgEcho, routes[0].ID)
	var create Route[pkg]
	for _, rt := range routes {
		if rt.ID == pkgCreate {
			create = rt
		}
	}
	assert.Equal(t, "CREATE_AUTHOR", create.Name)
	assert.Equal(t, AccessRoles, create.Access)
	assert.Equal(t, []string{"create-author"}, create.Roles)
	assert.JSONEq(t, createSchema, string(create.Schema))
	assert.False(t, create.Paginated)
	assert.Equal(t, DefaultTimeout, create.Timeout)
	assert.NoError(t, r.VerifyAll(pkgEcho, pkgCreate))
	err := r.VerifyAll(pkgEcho, 40, 41)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "40")
	assert.Contains(t, err.Error(), "41")
}

func TestMiddlewareOrderAndOutcomes(t *testing.T) {
	var calls atomic.Int64
	r := newTestRouter(t, &calls)
	var trace []string
	mw := func(name string) Middleware[pkg] {
		return func(next Handler[pkg]) Handler[pkg] {
			return HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
				trace = append(trace, name+">")
				resp := next.ServePackage(ctx, req)
				trace = append(trace, fmt.Sprintf("<%s:%d", name, resp.Status))
				return resp
			})
		}
	}
	r.Use(mw("a"), mw("b"))
	r.Dispatch(context.Background(), reader, []byte(env(3, `{"name":"x"}`)))
	assert.Equal(t, []string{"a>", "b>", "<b:3", "<a:3"}, trace, "middleware sees permission_denied")
	trace = nil
	r.Dispatch(context.Background(), reader, []byte(env(99, `{}`)))
	assert.Empty(t, trace, "unknown packages do not reach middleware")
}

// TestMiddlewarePanicIsAnswered: a panicking middleware is answered
// internal_error like a panicking handler; Dispatch does not panic.
func TestMiddlewarePanicIsAnswered(t *testing.T) {
	var calls atomic.Int64
	r := newTestRouter(t, &calls)
	r.Use(func(next Handler[pkg]) Handler[pkg] {
		return HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
			panic("middleware secret")
		})
	})
	var out []byte
	require.NotPanics(t, func() { out = r.Dispatch(context.Background(), reader, []byte(env(1, `{}`))) })
	var rep reply
	require.NoError(t, json.Unmarshal(out, &rep))
	assert.EqualValues(t, 1, rep.StatusCode)
	assert.Equal(t, rid, rep.ReqID)
	assert.Contains(t, string(rep.Data), `"code":"internal_error"`)
	assert.NotContains(t, string(out), "secret")
}

func TestTransportContext(t *testing.T) {
	ctx := WithTransport(context.Background(), "ws")
	assert.Equal(t, "ws", TransportFrom(ctx))
	assert.Equal(t, "", TransportFrom(context.Background()))
}

func TestEncodePush(t *testing.T) {
	b, err := EncodePush(pkg(100), map[string]any{"id": 1, "name": "<Ada>"})
	require.NoError(t, err)
	assert.Equal(t, `{"pkg_id":100,"req_id":"00000000-0000-0000-0000-000000000000","data":{"id":1,"name":"<Ada>"}}`, string(b))
}

func TestToError(t *testing.T) {
	assert.Equal(t, CodeTimeout, ToError(fmt.Errorf("x: %w", context.DeadlineExceeded)).Code)
	e := ToError(errors.New("internal detail"))
	assert.Equal(t, CodeInternalError, e.Code)
	assert.Equal(t, "Internal server error", e.Msg)
	assert.Equal(t, StatusError, e.Status)
	rl := ToError(errkind.New(errkind.RateLimited, "slow down"))
	assert.Equal(t, StatusRateLimited, rl.Status)
	assert.Equal(t, CodeRateLimitExceeded, rl.Code)
	require.NotNil(t, rl.Body().RetryAfterMS)
	assert.Equal(t, StatusInvalidData, ToError(ErrInvalidData).Status)
	assert.Equal(t, StatusPermissionDenied, ToError(ErrForbidden).Status)
}

func TestStatusNames(t *testing.T) {
	assert.Equal(t, "OK", StatusOK.String())
	assert.Equal(t, "ERROR", StatusError.String())
	assert.Equal(t, "INVALID_DATA", StatusInvalidData.String())
	assert.Equal(t, "PERMISSION_DENIED", StatusPermissionDenied.String())
	assert.Equal(t, "RATE_LIMITED", StatusRateLimited.String())
}
