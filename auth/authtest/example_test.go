package authtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
)

// A development issuer mounted on an application's own mux under /idp: the
// realm's endpoints are then /idp/realms/dev/...
func ExampleIssuer_Handler() {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()

	iss, err := authtest.New(authtest.Config{
		BaseURL:  srv.URL + "/idp",
		Realm:    "dev",
		ClientID: "authorsvc",
		Users:    []authtest.User{{Username: "ada", Password: "dev", Roles: []string{"get-authors"}}},
	})
	if err != nil {
		panic(err)
	}
	mux.Handle("/idp/", http.StripPrefix("/idp", iss.Handler()))

	resp, err := http.PostForm(iss.TokenURL(), map[string][]string{
		"grant_type": {"password"}, "client_id": {"authorsvc"}, "username": {"ada"}, "password": {"dev"},
	})
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"access_token"`))
	fmt.Println(strings.TrimPrefix(iss.JWKSURL(), srv.URL))
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// 200 true
	// /idp/realms/dev/protocol/openid-connect/certs
}

// An Issuer is an auth.Authenticator and serves an application's login
// routes in process: development auth in one value.
func ExampleIssuer_LoginHandler() {
	iss, err := authtest.New(authtest.Config{
		ClientID: "todo",
		Users:    []authtest.User{{Username: "ada", Password: "dev", Roles: []string{"todo-write"}}},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /auth/", iss.LoginHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/auth/login", "application/json",
		strings.NewReader(`{"username":"ada","password":"dev"}`))
	if err != nil {
		panic(err)
	}
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tokens)
	resp.Body.Close()

	var authn auth.Authenticator = iss
	p, err := authn.Authenticate(context.Background(), tokens.AccessToken)
	fmt.Println(p.Username, p.Roles, err)
	http.DefaultClient.CloseIdleConnections()
	// Output:
	// ada [todo-write] <nil>
}
