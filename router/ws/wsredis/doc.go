// Package wsredis is a Redis pub/sub ws.Broker: pushes made on one
// instance reach the WebSocket connections of every instance subscribed to
// the same channel.
//
// The subscriber reconnects by itself after an outage (with backoff) and
// checks an idle subscription with a ping, so that a hung server is noticed
// too. Messages published while an instance is disconnected are not
// replayed: pushes are best effort across instances, while delivery to
// the publishing instance's own connections never depends on Redis.
package wsredis
