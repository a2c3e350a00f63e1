package router

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
)

// FuzzDispatch feeds arbitrary bytes through the envelope parse and the
// dispatch pipeline: the router must never panic, must always answer with a
// well-formed envelope, and must never hand a handler data that the strict
// parser should have refused.
func FuzzDispatch(f *testing.F) {
	seeds := []string{
		env(1, `{"a":1}`),
		env(3, `{"name":"Ada"}`),
		env(3, `{"name":""}`),
		env(12, `{"n":1e400}`),
		env(12, `{"n":1e401}`),
		`{"pkg_id":1,"pkg_id":1,"req_id":"` + rid + `"}`,
		`{"pkg_id":1,"req_id":"` + rid + `","data":{"a":1,"a":2}}`,
		`{"PKG_ID":1,"req_id":"` + rid + `"}`,
		env(1, `{}`) + `{}`,
		`[]`, `null`, `"x"`, `{`, `{"pkg_id":`, "\xff",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	var calls atomic.Int64
	r := New[pkg](Config{})
	checked := HandlerFunc[pkg](func(ctx context.Context, req *Request[pkg]) Response {
		calls.Add(1)
		if ok, why := checkJSON(req.Data); !ok || req.Data[0] != '{' {
			panic("handler received data the parser should have refused: " + why)
		}
		var v map[string]any
		if err := json.Unmarshal(req.Data, &v); err != nil {
			panic("handler received undecodable data: " + err.Error())
		}
		return Response{Data: req.Data}
	})
	r.Register(1, checked, Public())
	r.Register(3, checked, Public(), Schema(createSchema))
	r.Register(12, checked, Public(), Schema(`{"type":"object","properties":{"n":{"type":"number","minimum":5}}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := r.Dispatch(context.Background(), nil, in)
		var rep struct {
			PkgID      *int64          `json:"pkg_id"`
			ReqID      *string         `json:"req_id"`
			StatusCode *int            `json:"status_code"`
			Meta       json.RawMessage `json:"meta"`
			Data       json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("reply is not JSON: %v: %s", err, out)
		}
		if rep.PkgID == nil || rep.ReqID == nil || rep.StatusCode == nil || rep.Data == nil {
			t.Fatalf("reply misses keys: %s", out)
		}
	})
}
