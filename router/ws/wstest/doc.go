// Package wstest is a small WebSocket client for tests of pkgroute
// endpoints: dial with a token (Authorization header or first-message
// auth), call packages and await their replies by req_id, receive pushes,
// and observe how the server closed the connection. BrokerConformance
// checks implementations of ws.Broker.
package wstest
