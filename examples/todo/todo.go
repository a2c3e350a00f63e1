package main

import (
	"context"

	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/router"
)

// PkgID names the packages of the todo service.
type PkgID int32

// The packages; their values are the wire contract.
const (
	CreateTodo PkgID = 1
	ListTodos  PkgID = 2
)

// Roles of the service.
const (
	RoleRead  = "todo-read"
	RoleWrite = "todo-write"
)

// Todo is one item, a row of table todos.
type Todo struct {
	ID    int64  `bun:"id,pk,autoincrement" json:"id"`
	Title string `bun:"title,notnull" json:"title"`
	Done  bool   `bun:"done,notnull" json:"done"`
}

// CreateTodoInput is the data of CREATE_TODO.
type CreateTodoInput struct {
	Title string `json:"title"`
}

const createTodoSchema = `{"type":"object","properties":{"title":{"type":"string","minLength":1,"maxLength":200}},"required":["title"],"additionalProperties":false}`

// NewRouter returns the packages of the service over todos.
func NewRouter(todos *repository.Repository[Todo]) *router.PackageRouter[PkgID] {
	r := router.New[PkgID](router.Config{})
	router.Handle(r, CreateTodo, func(ctx context.Context, in CreateTodoInput) (Todo, error) {
		t := Todo{Title: in.Title}
		return t, todos.Create(ctx, &t)
	}, router.Roles(RoleWrite), router.Schema(createTodoSchema), router.Name("CREATE_TODO"))
	router.Handle(r, ListTodos, func(ctx context.Context, p repository.Page) (repository.Result[Todo], error) {
		return todos.Paginate(ctx, p) // items in the reply's data, repository.Meta in its meta
	}, router.Roles(RoleRead), router.Paginated(), router.Name("LIST_TODOS"))
	return r
}
