// Command rawecho is the baseline of the side-by-side harness: a bare
// gorilla/websocket server that reads each pkgroute request envelope
// (encoding/json) and answers a reply of the same shape
// ({"pkg_id","req_id","status_code":0,"meta":null,"data"}), one message
// at a time per connection, with no authentication, routing, limits or
// metrics. It serves /web and /metrics (go_goroutines).
package main

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/bench/internal/serve"
)

func main() {
	up := &websocket.Upgrader{}
	serve.Main("rawecho", func(mux *http.ServeMux) {
		mux.HandleFunc("/web", func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			echo(c)
		})
	})
}

type envelope struct {
	PkgID int64           `json:"pkg_id"`
	ReqID string          `json:"req_id"`
	Data  json.RawMessage `json:"data"`
}

func echo(c *websocket.Conn) {
	var out []byte
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		var env envelope
		if err := json.Unmarshal(msg, &env); err != nil {
			return
		}
		if len(env.Data) == 0 {
			env.Data = json.RawMessage("{}")
		}
		out = append(out[:0], `{"pkg_id":`...)
		out = strconv.AppendInt(out, env.PkgID, 10)
		out = append(out, `,"req_id":`...)
		out = strconv.AppendQuote(out, env.ReqID)
		out = append(out, `,"status_code":0,"meta":null,"data":`...)
		out = append(out, env.Data...)
		out = append(out, '}')
		if err := c.WriteMessage(websocket.TextMessage, out); err != nil {
			return
		}
	}
}
