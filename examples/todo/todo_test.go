package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/pkgroutetest"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/pkgroute/pkgroute/server"
)

// newTodos returns a repository over a fresh in-memory database.
func newTodos(t *testing.T) *repository.Repository[Todo] {
	ctx := context.Background()
	db, err := dbopen.Open(ctx, "sqlite::memory:", dbopen.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.NewCreateTable().Model((*Todo)(nil)).Exec(ctx)
	require.NoError(t, err)
	todos, err := repository.New[Todo](db, repository.Config{})
	require.NoError(t, err)
	return todos
}

func TestTodos(t *testing.T) {
	r := NewRouter(newTodos(t))
	todo := pkgroutetest.Call[Todo](t, r, CreateTodo, CreateTodoInput{Title: "milk"}, RoleWrite)
	assert.Equal(t, "milk", todo.Title)
	page := pkgroutetest.Call[repository.Result[Todo]](t, r, ListTodos, repository.Offset(1, 10), RoleRead)
	assert.Equal(t, []Todo{todo}, page.Items)
	pkgroutetest.Send(t, r, CreateTodo, CreateTodoInput{}, RoleWrite).RequireCode(t, "invalid_data")
	pkgroutetest.Send(t, r, CreateTodo, CreateTodoInput{Title: "x"}, RoleRead).RequireCode(t, "permission_denied")
}

func TestTodosOverBothTransports(t *testing.T) {
	srv := pkgroutetest.NewServer(t, NewRouter(newTodos(t)), server.Config{})

	ws := srv.Dial(RoleRead, RoleWrite)
	created := pkgroutetest.Decode[Todo](t, pkgroutetest.SendWS(t, ws, CreateTodo, CreateTodoInput{Title: "eggs"}))
	reply := srv.SendHTTP(t, ListTodos, repository.Offset(1, 10), RoleRead).RequireStatus(t, 0)
	assert.JSONEq(t, `{"page":1,"per_page":10,"total":1,"pages":1,"next_cursor":null,"has_more":false}`, string(reply.Meta))
	assert.Equal(t, []Todo{created}, pkgroutetest.Decode[repository.Result[Todo]](t, reply).Items)
	srv.SendHTTP(t, CreateTodo, CreateTodoInput{Title: "x"}).RequireCode(t, "authentication_failed")
	srv.SendHTTP(t, CreateTodo, CreateTodoInput{Title: "x"}, RoleRead).RequireCode(t, "permission_denied")
}
