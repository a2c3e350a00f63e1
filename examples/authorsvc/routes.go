package main

import (
	"context"
	"fmt"

	"github.com/pkgroute/pkgroute/router"
)

// PkgID names the packages of the author service. Values are explicit: they
// are part of the wire contract with clients.
type PkgID int32

// The packages.
const (
	GetAuthors          PkgID = 1
	GetPaginatedAuthors PkgID = 2
	CreateAuthor        PkgID = 3
	UpdateAuthor        PkgID = 4
	DeleteAuthor        PkgID = 5
	Ping                PkgID = 10
	AuthorCreated       PkgID = 100 // push
)

// String returns the package name used in listings and audit entries.
func (id PkgID) String() string {
	switch id {
	case GetAuthors:
		return "GET_AUTHORS"
	case GetPaginatedAuthors:
		return "GET_PAGINATED_AUTHORS"
	case CreateAuthor:
		return "CREATE_AUTHOR"
	case UpdateAuthor:
		return "UPDATE_AUTHOR"
	case DeleteAuthor:
		return "DELETE_AUTHOR"
	case Ping:
		return "PING"
	case AuthorCreated:
		return "AUTHOR_CREATED"
	}
	return fmt.Sprintf("PKG_%d", int32(id))
}

// registerPackages lists every package of the service with its access and
// schema.
func registerPackages(r *router.PackageRouter[PkgID]) {
	// PING echoes its data: the cost of the pipeline with no business work.
	r.Register(Ping, router.HandlerFunc[PkgID](func(ctx context.Context, req *router.Request[PkgID]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
}
