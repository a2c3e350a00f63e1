package ws

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/router"
	"github.com/stretchr/testify/assert"
)

func TestScanHead(t *testing.T) {
	id := uuid.MustParse("5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a")
	tests := []struct {
		in   string
		want head
	}{
		{`{"pkg_id":3,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"req_id":"x"}}`, head{pkgID: 3, reqID: id, hasReqID: true}},
		{` { "data" : {"pkg_id":9,"a":[1,{"b":"}"}]}, "req_id" : "5B0C2F0E-8F3E-4A58-9C1B-2F7F4F1E9D3A" , "pkg_id":-4}`, head{pkgID: -4, reqID: id, hasReqID: true}},
		{`{"type":"auth","token":"Bearer x"}`, head{isAuth: true}},
		{`{"type":"authx"}`, head{}},
		{`{"req_id":"00000000-0000-0000-0000-000000000000"}`, head{}},
		{`{"req_id":"5b0c2f0e8f3e4a589c1b2f7f4f1e9d3a"}`, head{}},
		{`{"pkg_id":1.5}`, head{}},
		{`[1,2]`, head{}},
		{`{"pkg_id":7`, head{pkgID: 7}},
		{`{"a":"\"","pkg_id":2}`, head{pkgID: 2}},
		{``, head{}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, scanHead([]byte(tt.in)), tt.in)
	}
}

// FuzzScanHead checks that scanHead reads the same req_id as the router
// whenever the router accepts the envelope, so that duplicate detection
// and the router agree.
func FuzzScanHead(f *testing.F) {
	for _, s := range []string{
		`{"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{}}`,
		`{"req_id":"5B0C2F0E-8F3E-4A58-9C1B-2F7F4F1E9D3A","pkg_id":1,"method":"x","data":{"req_id":"y"}}`,
		`{"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"s":"\"}"}}`,
		`{"type":"auth","token":"Bearer abc"}`,
		`{"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":null}`,
	} {
		f.Add([]byte(s))
	}
	r := router.New[int64](router.Config{})
	r.Register(1, router.HandlerFunc[int64](func(context.Context, *router.Request[int64]) router.Response {
		return router.Response{}
	}), router.Public())
	f.Fuzz(func(t *testing.T, b []byte) {
		h := scanHead(b)
		pkg, reqID, resp := r.DispatchResponse(context.Background(), nil, b)
		if resp.Status != router.StatusOK {
			return
		}
		if !h.hasReqID || h.reqID != reqID || h.pkgID != int64(pkg) {
			t.Fatalf("scanHead %+v, router pkg_id %d req_id %s for %q", h, pkg, reqID, b)
		}
	})
}

func BenchmarkScanHead(b *testing.B) {
	msg := []byte(`{"pkg_id":3,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","method":"","data":{"name":"Ada Lovelace","tags":[1,2,3],"nested":{"a":true}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if h := scanHead(msg); !h.hasReqID {
			b.Fatal("no req_id")
		}
	}
}
