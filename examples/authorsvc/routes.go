package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/pkgroute/pkgroute/rbac"

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

// JSON Schemas of the packages' data.
const (
	idSchema   = `{"type":"integer","minimum":1}`
	nameSchema = `{"type":"string","minLength":1,"maxLength":200}`

	getAuthorsSchema = `{"type":"object","properties":{"id":` + idSchema + `,"name":{"type":"string"},"search_term":{"type":"string","maxLength":255}},"additionalProperties":false}`

	getPaginatedAuthorsSchema = `{"type":"object","properties":{` +
		`"filters":{"type":"object","properties":{"id":` + idSchema + `,"name":{"type":"string"}},"additionalProperties":false},` +
		`"page":{"type":"integer"},"per_page":{"type":"integer","minimum":1,"maximum":1000},` +
		`"cursor":{"type":"string","maxLength":1024}},"additionalProperties":false,` +
		// In cursor mode page is ignored (docs/protocol.md 1.4); in offset mode it
		// starts at 1.
		`"if":{"required":["cursor"]},"else":{"properties":{"page":{"minimum":1}}}}`

	createAuthorSchema  = `{"type":"object","properties":{"name":` + nameSchema + `},"required":["name"],"additionalProperties":false}`
	updateAuthorSchema  = `{"type":"object","properties":{"id":` + idSchema + `,"name":` + nameSchema + `},"required":["id","name"],"additionalProperties":false}`
	deleteAuthorSchema  = `{"type":"object","properties":{"id":` + idSchema + `},"required":["id"],"additionalProperties":false}`
	authorCreatedSchema = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"}},"required":["id","name"]}`
)

// Roles of the service.
const (
	roleGetAuthors   = "get-authors"
	roleCreateAuthor = "create-author"
	roleUpdateAuthor = "update-author"
	roleDeleteAuthor = "delete-author"
	roleAdmin        = "admin"
)

// allPackages are the ids every start-up verifies.
var allPackages = []PkgID{GetAuthors, GetPaginatedAuthors, CreateAuthor, UpdateAuthor, DeleteAuthor, Ping}

// registerPackages lists every package of the service with its access and
// schema.
func registerPackages(r *router.PackageRouter[PkgID], cmds authorCommands) {
	router.Handle(r, GetAuthors, cmds.get.Execute,
		router.Roles(roleGetAuthors), router.Schema(getAuthorsSchema))
	router.Handle(r, GetPaginatedAuthors, cmds.paginated.Execute,
		router.Roles(roleGetAuthors), router.Schema(getPaginatedAuthorsSchema), router.Paginated())
	router.Handle(r, CreateAuthor, cmds.create.Execute,
		router.Roles(roleCreateAuthor), router.Schema(createAuthorSchema))
	router.Handle(r, UpdateAuthor, cmds.update.Execute,
		router.Roles(roleUpdateAuthor), router.Schema(updateAuthorSchema))
	router.Handle(r, DeleteAuthor, cmds.delete.Execute,
		router.Roles(roleDeleteAuthor), router.Schema(deleteAuthorSchema))
	// PING echoes its data: the cost of the pipeline with no business work.
	r.Register(Ping, router.HandlerFunc[PkgID](func(ctx context.Context, req *router.Request[PkgID]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	r.DeclarePush(AuthorCreated, router.Roles(roleGetAuthors), router.Schema(authorCreatedSchema))
}

// httpRoute is one HTTP route of the service and who may call it.
type httpRoute struct {
	pattern string
	roles   []string // all required; nil with public false: any signed-in caller
	public  bool
	handler http.Handler
}

// authorRoutes are the REST routes over the author commands. Their input
// is checked against the schema of the matching package (pkgs), so both
// transports refuse the same data with the same details.
func authorRoutes(cmds authorCommands, pkgs *router.PackageRouter[PkgID]) []httpRoute {
	return []httpRoute{
		{pattern: "GET /authors", roles: []string{roleGetAuthors}, handler: getAuthorsHTTP(cmds, pkgs)},
		{pattern: "GET /authors/paginated", roles: []string{roleGetAuthors}, handler: getPaginatedAuthorsHTTP(cmds, pkgs)},
		{pattern: "POST /authors", roles: []string{roleCreateAuthor}, handler: createAuthorHTTP(cmds, pkgs)},
		{pattern: "PUT /authors/{id}", roles: []string{roleUpdateAuthor}, handler: updateAuthorHTTP(cmds, pkgs)},
		{pattern: "DELETE /authors/{id}", roles: []string{roleDeleteAuthor}, handler: deleteAuthorHTTP(cmds, pkgs)},
	}
}

// mount registers routes on mux behind their role checks.
func mount(mux *http.ServeMux, routes []httpRoute) {
	for _, rt := range routes {
		h := rt.handler
		if !rt.public {
			h = rbac.RequireRoles(rt.roles...)(h)
		}
		mux.Handle(rt.pattern, h)
	}
}
