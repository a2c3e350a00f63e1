package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodePanicIsLoggedAndAnswered(t *testing.T) {
	var logs bytes.Buffer
	r := New[pkg](Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	r.Register(1, HandlerFunc[pkg](func(context.Context, *Request[pkg]) Response {
		return Response{Data: explodes{}}
	}), Public())
	r.Register(2, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		return Response{Data: map[string]string{"ok": "yes"}}
	}), Public())

	var out []byte
	require.NotPanics(t, func() { out = r.Dispatch(context.Background(), nil, []byte(env(1, `{}`))) })
	rep, e := decode(t, out)
	assert.Equal(t, 1, rep.StatusCode)
	assert.Equal(t, CodeInternalError, e.Code)
	assert.Equal(t, internalMsg, e.Msg)
	assert.Equal(t, rid, rep.ReqID)
	assert.NotContains(t, string(out), "secret")
	assert.Contains(t, logs.String(), "encode response panicked")
	assert.Contains(t, logs.String(), "secret marshal state", "the panic value is logged")
	assert.Contains(t, logs.String(), "explodes.MarshalJSON", "the stack is logged")

	// The encoder that panicked is not reused in a broken state.
	for range 3 {
		rep, _ = decode(t, r.Dispatch(context.Background(), nil, []byte(env(2, `{}`))))
		assert.Equal(t, 0, rep.StatusCode)
		assert.JSONEq(t, `{"ok":"yes"}`, string(rep.Data))
	}

	// Encode on its own, and pushes, turn the panic into an answer or an error.
	out = r.Encode(2, uuid.MustParse(rid), Response{Data: []any{explodes{}}})
	_, e = decode(t, out)
	assert.Equal(t, CodeInternalError, e.Code)
	_, err := EncodePush(pkg(100), explodes{})
	assert.ErrorContains(t, err, "panic while encoding JSON")
}

func TestLateHandlerAnswersTimeout(t *testing.T) {
	r := New[pkg](Config{})
	var calls atomic.Int64
	sleepy := func(d time.Duration, resp func() Response) Handler[pkg] {
		return HandlerFunc[pkg](func(context.Context, *Request[pkg]) Response {
			calls.Add(1)
			time.Sleep(d) // ignores its context
			return resp()
		})
	}
	ok := func() Response { return Response{Data: map[string]int{"n": 1}} }
	notFound := func() Response { return Fail(ErrNotFound) }
	r.Register(1, sleepy(150*time.Millisecond, ok), Public(), Timeout(50*time.Millisecond))
	r.Register(2, sleepy(150*time.Millisecond, notFound), Public(), Timeout(50*time.Millisecond))
	r.Register(3, sleepy(0, ok), Public(), Timeout(50*time.Millisecond))
	r.Register(4, sleepy(0, notFound), Public(), Timeout(50*time.Millisecond))
	Handle(r, 5, func(ctx context.Context, in struct{}) (int, error) {
		calls.Add(1)
		time.Sleep(150 * time.Millisecond)
		return 7, nil
	}, Public(), Timeout(50*time.Millisecond))

	for _, tc := range []struct {
		name   string
		id     int
		status int
		code   string
		data   string
	}{
		{name: "late success", id: 1, status: 1, code: CodeTimeout},
		{name: "late error", id: 2, status: 1, code: CodeTimeout},
		{name: "late typed success", id: 5, status: 1, code: CodeTimeout},
		{name: "success in time", id: 3, status: 0, data: `{"n":1}`},
		{name: "error in time", id: 4, status: 1, code: CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls.Store(0)
			rep, e := decode(t, r.Dispatch(context.Background(), nil, []byte(env(tc.id, `{}`))))
			assert.EqualValues(t, 1, calls.Load())
			assert.Equal(t, tc.status, rep.StatusCode)
			assert.Equal(t, tc.code, e.Code)
			if tc.data != "" {
				assert.JSONEq(t, tc.data, string(rep.Data))
			}
		})
	}

	// Middleware sees the timeout as the handler's outcome, with its cause.
	var seen Response
	r.Use(func(next Handler[pkg]) Handler[pkg] {
		return HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
			seen = next.ServePackage(ctx, req)
			return seen
		})
	})
	r.Dispatch(context.Background(), nil, []byte(env(1, `{}`)))
	assert.ErrorIs(t, seen.Err, context.DeadlineExceeded)
	assert.Equal(t, http.StatusGatewayTimeout, HTTPStatus(seen))
}

func TestMetaOnlyForPaginatedPackages(t *testing.T) {
	r := New[pkg](Config{})
	next := "n"
	pg := page{items: []int{1}, meta: Metadata{Page: 1, NextCursor: &next}}
	// An output typed as an interface cannot be checked at registration;
	// the encoder still keeps meta null.
	Handle(r, 1, func(context.Context, struct{}) (any, error) { return pg, nil }, Public())
	Handle(r, 2, func(context.Context, struct{}) (any, error) { return pg, nil }, Public(), Paginated())
	r.Register(3, HandlerFunc[pkg](func(context.Context, *Request[pkg]) Response {
		resp := Fail(ErrNotFound)
		resp.Meta = Metadata{Page: 1}
		return resp
	}), Public(), Paginated())

	rep, _ := decode(t, r.Dispatch(context.Background(), nil, []byte(env(1, `{}`))))
	assert.Equal(t, 0, rep.StatusCode)
	assert.Equal(t, "null", string(rep.Meta))
	assert.JSONEq(t, `[1]`, string(rep.Data))

	rep, _ = decode(t, r.Dispatch(context.Background(), nil, []byte(env(2, `{}`))))
	assert.JSONEq(t, `{"page":1,"per_page":0,"total":0,"pages":0,"next_cursor":"n","has_more":false}`, string(rep.Meta))

	rep, _ = decode(t, r.Dispatch(context.Background(), nil, []byte(env(3, `{}`))))
	assert.Equal(t, 1, rep.StatusCode)
	assert.Equal(t, "null", string(rep.Meta), "errors carry no meta")

	out := r.Encode(99, uuid.MustParse(rid), Response{Data: 1, Meta: Metadata{}})
	rep, _ = decode(t, out)
	assert.Equal(t, "null", string(rep.Meta), "unknown package")
}

func TestServeChecksData(t *testing.T) {
	r := New[pkg](Config{})
	var got []string
	r.Register(1, HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		got = append(got, string(req.Data))
		return Response{Data: req.Data}
	}), Public())
	for _, tc := range []struct {
		data string
		msg  string // "" when the handler must run
	}{
		{data: `{"a":1,"a":2}`, msg: `duplicate key "a"`},
		{data: `{"a":{"b":[{"c":1,"c":1}]}}`, msg: `duplicate key "c"`},
		{data: `{"n":1e401}`, msg: "number exponent is out of range"},
		{data: fmt.Sprintf(`{"n":1%0101d}`, 0), msg: "number has too many digits"},
		{data: `{"a":`, msg: "request is not valid JSON"},
		{data: `{} {}`, msg: "trailing data"},
		{data: `[1]`, msg: "data must be a JSON object"},
		{data: ` "x"`, msg: "data must be a JSON object"},
		{data: `null`, msg: "data must be a JSON object"},
		{data: `{"a":1}`},
		{data: ` {"n":1e400} `},
		{data: ``},
	} {
		t.Run(tc.data, func(t *testing.T) {
			got = nil
			resp := r.Serve(context.Background(), &Request[pkg]{PkgID: 1, ReqID: uuid.New(), Data: []byte(tc.data)})
			if tc.msg == "" {
				assert.Equal(t, StatusOK, resp.Status)
				require.Len(t, got, 1)
				if tc.data == "" {
					assert.Equal(t, "{}", got[0])
				}
				return
			}
			assert.Empty(t, got, "handler must not run")
			assert.Equal(t, StatusInvalidData, resp.Status)
			var e *Error
			require.True(t, errors.As(resp.Err, &e))
			assert.Equal(t, CodeInvalidRequest, e.Code)
			assert.Equal(t, tc.msg, e.Msg)
		})
	}
}
