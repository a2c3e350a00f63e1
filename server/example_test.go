package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/server"
)

// PkgID names the packages of the example service.
type PkgID int32

// Greet is the example's one package.
const Greet PkgID = 1

// A whole service: one typed package, development auth, in-memory limits,
// an audit trail to a log, served on a loopback port until the context
// ends.
func Example() {
	r := router.New[PkgID](router.Config{})
	router.Handle(r, Greet, func(_ context.Context, in struct {
		Name string `json:"name"`
	}) (string, error) {
		return "hello, " + in.Name, nil
	}, router.Roles("greet"), router.Name("GREET"))

	dev, err := authtest.New(authtest.Config{Users: []authtest.User{
		{Username: "ada", Password: "dev", Roles: []string{"greet"}},
	}})
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // or Config.Addr
	if err != nil {
		panic(err)
	}
	srv, err := server.New(r, server.Config{
		Listener:      ln,
		Authenticator: dev,                // keycloak.NewVerifier in production
		Login:         dev.LoginHandler(), // POST /auth/login, /auth/refresh
		Limiter:       ratelimit.NewMemory(ratelimit.MemoryConfig{Name: "http"}),
		Audit:         audit.New(audit.Config{Sink: audit.SlogSink(nil)}), // auditbun.New(db, ...) in production
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background()) // signal.NotifyContext in main
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	base := "http://" + ln.Addr().String()
	resp, err := http.Post(base+"/auth/login", "application/json", strings.NewReader(`{"username":"ada","password":"dev"}`))
	if err != nil {
		panic(err)
	}
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tokens)
	resp.Body.Close()

	req, _ := http.NewRequest(http.MethodPost, base+"/api/pkg/1", strings.NewReader(`{"data":{"name":"Ada"}}`))
	req.Header.Set("Authorization", "Bearer "+tokens.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var reply struct {
		Status int    `json:"status_code"`
		Data   string `json:"data"`
	}
	_ = json.Unmarshal(body, &reply)
	fmt.Println(resp.StatusCode, reply.Status, reply.Data)

	http.DefaultClient.CloseIdleConnections()
	stop()
	fmt.Println(<-done)
	// Output:
	// 200 0 hello, Ada
	// <nil>
}
