package router_test

import (
	"context"
	"fmt"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/router"
)

type PkgID int32

const (
	GetAuthor PkgID = 1
	Ping      PkgID = 10
)

func (id PkgID) String() string {
	switch id {
	case GetAuthor:
		return "GET_AUTHOR"
	case Ping:
		return "PING"
	}
	return fmt.Sprintf("PKG_%d", int32(id))
}

type getAuthorIn struct {
	ID int `json:"id"`
}

type author struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func Example() {
	r := router.New[PkgID](router.Config{})
	router.Handle(r, GetAuthor, func(ctx context.Context, in getAuthorIn) (author, error) {
		if in.ID != 7 {
			return author{}, fmt.Errorf("author %d: %w", in.ID, router.ErrNotFound)
		}
		return author{ID: 7, Name: "Ada"}, nil
	},
		router.Roles("get-authors"),
		router.Schema(`{"type":"object","properties":{"id":{"type":"integer","minimum":1}},"required":["id"],"additionalProperties":false}`),
	)

	reader := &auth.Principal{ID: "u1", Username: "reader", Roles: []string{"get-authors"}}
	ctx := context.Background()
	fmt.Println(string(r.Dispatch(ctx, reader, []byte(`{"pkg_id":1,"req_id":"5B0C2F0E-8F3E-4A58-9C1B-2F7F4F1E9D3A","data":{"id":7}}`))))
	fmt.Println(string(r.Dispatch(ctx, reader, []byte(`{"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"id":0}}`))))
	fmt.Println(string(r.Dispatch(ctx, reader, []byte(`{"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"id":8}}`))))
	// Output:
	// {"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","status_code":0,"meta":null,"data":{"id":7,"name":"Ada"}}
	// {"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","status_code":2,"meta":null,"data":{"code":"invalid_data","msg":"data does not match the schema of pkg_id 1","details":[{"path":"/id","msg":"minimum: want >= 1"}]}}
	// {"pkg_id":1,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","status_code":1,"meta":null,"data":{"code":"not_found","msg":"author 8: not found","details":null}}
}

func ExamplePackageRouter_Register() {
	r := router.New[PkgID](router.Config{})
	// A raw handler: full control over the reply. PING echoes its data.
	r.Register(Ping, router.HandlerFunc[PkgID](func(ctx context.Context, req *router.Request[PkgID]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())

	user := &auth.Principal{ID: "u1", Username: "ada"}
	out := r.Dispatch(context.Background(), user, []byte(`{"pkg_id":10,"req_id":"0b7e6a4c-3f43-4c41-9d0a-6f0c0f6a7b10","data":{"hello":"world"}}`))
	fmt.Println(string(out))
	// Output:
	// {"pkg_id":10,"req_id":"0b7e6a4c-3f43-4c41-9d0a-6f0c0f6a7b10","status_code":0,"meta":null,"data":{"hello":"world"}}
}
