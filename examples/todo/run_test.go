package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The service as main runs it: log in as ada, create a todo over the bridge.
func TestRun(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, "sqlite::memory:", slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{}}

	resp, err := client.Post(base+"/auth/login", "application/json", strings.NewReader(`{"username":"ada","password":"ada"}`))
	require.NoError(t, err)
	var tokens struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tokens))
	resp.Body.Close()

	req, _ := http.NewRequest(http.MethodPost, base+"/api/pkg/1", strings.NewReader(`{"data":{"title":"milk"}}`))
	req.Header.Set("Authorization", "Bearer "+tokens.AccessToken)
	resp, err = client.Do(req)
	require.NoError(t, err)
	var reply struct {
		Status int  `json:"status_code"`
		Data   Todo `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reply))
	resp.Body.Close()
	assert.Equal(t, 0, reply.Status)
	assert.Equal(t, "milk", reply.Data.Title)

	client.CloseIdleConnections()
	cancel()
	require.NoError(t, <-done)
}
