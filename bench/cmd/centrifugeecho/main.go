// Command centrifugeecho is the peer of the side-by-side harness: a
// centrifuge (github.com/centrifugal/centrifuge) node whose RPC handler
// answers every call with its data, on centrifuge's default WebSocket
// settings. Connections are accepted as one fixed user (no token check:
// the harness measures requests and idle connections, not the
// handshake). It serves /connection/websocket and /metrics (go_goroutines).
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/centrifugal/centrifuge"
	"github.com/pkgroute/pkgroute/bench/internal/serve"
)

func main() {
	node, err := centrifuge.New(centrifuge.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "centrifugeecho:", err)
		os.Exit(1)
	}
	node.OnConnecting(func(ctx context.Context, e centrifuge.ConnectEvent) (centrifuge.ConnectReply, error) {
		return centrifuge.ConnectReply{Credentials: &centrifuge.Credentials{UserID: "bench"}}, nil
	})
	node.OnConnect(func(client *centrifuge.Client) {
		client.OnRPC(func(e centrifuge.RPCEvent, cb centrifuge.RPCCallback) {
			cb(centrifuge.RPCReply{Data: e.Data}, nil)
		})
	})
	if err := node.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "centrifugeecho:", err)
		os.Exit(1)
	}
	defer func() { _ = node.Shutdown(context.Background()) }()
	serve.Main("centrifugeecho", func(mux *http.ServeMux) {
		mux.Handle("/connection/websocket", centrifuge.NewWebsocketHandler(node, centrifuge.WebsocketConfig{}))
	})
}
