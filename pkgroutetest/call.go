package pkgroutetest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
)

// Reply is a decoded response envelope, from any transport.
type Reply struct {
	// Status is the status_code.
	Status router.StatusCode
	// Meta and Data are the raw meta and data members.
	Meta, Data json.RawMessage
}

// Error returns the error body of a reply with a non-zero status, or nil.
func (r *Reply) Error() *router.ErrorBody {
	if r.Status == router.StatusOK {
		return nil
	}
	var b router.ErrorBody
	if err := json.Unmarshal(r.Data, &b); err != nil {
		return &router.ErrorBody{Code: "undecodable", Msg: err.Error()}
	}
	return &b
}

// RequireStatus fails the test now unless the reply's status is want.
func (r *Reply) RequireStatus(t testing.TB, want router.StatusCode) *Reply {
	t.Helper()
	if r.Status != want {
		t.Fatalf("pkgroutetest: status_code %d, want %d; data: %s", r.Status, want, r.Data)
	}
	return r
}

// RequireCode fails the test now unless the reply is an error with the wire
// code want ("permission_denied", "invalid_data", "not_found", ...).
func (r *Reply) RequireCode(t testing.TB, want string) *Reply {
	t.Helper()
	e := r.Error()
	if e == nil {
		t.Fatalf("pkgroutetest: status_code 0, want error %s; data: %s", want, r.Data)
	}
	if e.Code != want {
		t.Fatalf("pkgroutetest: error %s (%s), want %s", e.Code, e.Msg, want)
	}
	return r
}

// Decode returns the reply's data decoded as O, failing the test unless the
// status is 0. A paged O (a router.Paged such as repository.Result) is
// rebuilt from the reply's data and meta as {"items": data, "meta": meta}.
func Decode[O any](t testing.TB, r *Reply) O {
	t.Helper()
	r.RequireStatus(t, router.StatusOK)
	var out O
	data := r.Data
	if _, paged := any(out).(router.Paged); paged {
		data, _ = json.Marshal(struct {
			Items json.RawMessage `json:"items"`
			Meta  json.RawMessage `json:"meta"`
		}{r.Data, r.Meta})
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("pkgroutetest: decode data as %T: %v; data: %s", out, err, r.Data)
	}
	return out
}

// Principal returns the caller Send and Call use: user "test" holding
// roles.
func Principal(roles ...string) *auth.Principal {
	return &auth.Principal{ID: "test-" + strings.Join(roles, "+"), Username: "test", Roles: roles}
}

// Send runs package id of r in process, through its whole pipeline (roles,
// schema, middleware, handler) as the transports do, for a caller holding
// roles, and returns the reply whatever its status. in is encoded as the
// request's data (nil: {}).
func Send[T router.ID, I any](t testing.TB, r *router.PackageRouter[T], id T, in I, roles ...string) *Reply {
	t.Helper()
	return SendAs(t, r, id, in, Principal(roles...))
}

// SendAs is Send for a given caller; nil is an anonymous one.
func SendAs[T router.ID, I any](t testing.TB, r *router.PackageRouter[T], id T, in I, p *auth.Principal) *Reply {
	t.Helper()
	raw := envelope(t, int64(id), in)
	return decodeReply(t, r.Dispatch(context.Background(), p, raw))
}

// Call runs package id of r in process for a caller holding roles, as Send,
// and returns its output decoded as O (see Decode); any other status fails
// the test now.
func Call[O any, T router.ID, I any](t testing.TB, r *router.PackageRouter[T], id T, in I, roles ...string) O {
	t.Helper()
	return Decode[O](t, Send(t, r, id, in, roles...))
}

// SendWS sends package id with data in over the WebSocket connection c and
// returns the reply.
func SendWS[T router.ID, I any](t testing.TB, c *wstest.Client, id T, in I) *Reply {
	t.Helper()
	m, err := wstest.Call(context.Background(), c, id, dataOf(t, in))
	if err != nil {
		t.Fatalf("pkgroutetest: WebSocket call of pkg_id %d: %v", int64(id), err)
	}
	return &Reply{Status: m.StatusCode(), Meta: m.Meta, Data: m.Data}
}

func dataOf(t testing.TB, in any) json.RawMessage {
	t.Helper()
	if in == nil {
		return nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("pkgroutetest: encode input %T: %v", in, err)
	}
	if string(b) == "null" {
		return nil
	}
	return b
}

func envelope(t testing.TB, id int64, in any) []byte {
	t.Helper()
	b, err := json.Marshal(struct {
		PkgID int64           `json:"pkg_id"`
		ReqID string          `json:"req_id"`
		Data  json.RawMessage `json:"data,omitempty"`
	}{id, uuid.NewString(), dataOf(t, in)})
	if err != nil {
		t.Fatalf("pkgroutetest: encode envelope: %v", err)
	}
	return b
}

func decodeReply(t testing.TB, raw []byte) *Reply {
	t.Helper()
	var env struct {
		Status *router.StatusCode `json:"status_code"`
		Meta   json.RawMessage    `json:"meta"`
		Data   json.RawMessage    `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Status == nil {
		t.Fatalf("pkgroutetest: not a response envelope: %s", raw)
	}
	return &Reply{Status: *env.Status, Meta: env.Meta, Data: env.Data}
}
