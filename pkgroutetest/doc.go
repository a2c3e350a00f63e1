// Package pkgroutetest is the test kit for applications built on pkgroute:
// typed calls of a package router without a network, a loopback server
// assembled by package server with its http:// and ws:// URLs, tokens per
// role from a development issuer, and assertions on status and error
// codes. It is generic over the application's package id type.
//
// A handler test:
//
//	func TestCreateTodo(t *testing.T) {
//		r := newRouter(store)
//		out := pkgroutetest.Call[Todo](t, r, CreateTodo, CreateTodoInput{Title: "milk"}, "todo-write")
//		assert.Equal(t, "milk", out.Title)
//		pkgroutetest.Send(t, r, CreateTodo, CreateTodoInput{}, "todo-read").
//			RequireCode(t, "permission_denied")
//	}
//
// The same over both transports of a real server:
//
//	srv := pkgroutetest.NewServer(t, r, server.Config{})
//	c := srv.Dial("todo-write")
//	reply := pkgroutetest.SendWS(t, c, CreateTodo, CreateTodoInput{Title: "milk"})
//	srv.SendHTTP(t, CreateTodo, CreateTodoInput{Title: "eggs"}, "todo-write").RequireStatus(t, router.StatusOK)
package pkgroutetest
