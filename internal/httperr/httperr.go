// Package httperr writes the HTTP error body of the wire contract,
// {"error":{"code","msg","details"}}, for every package that answers HTTP
// errors (middleware, auth, rbac, ratelimit, router's bridge), so that they
// all answer alike.
package httperr

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

type body struct {
	Error object `json:"error"`
}

type object struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	Details any    `json:"details"`
}

// Write answers status with the error body of code, msg and details (null
// when nil; dropped to null when they cannot be encoded) and Content-Type
// application/json. 429 and 503 answers carry Retry-After: retry in whole
// seconds, rounded up and at least 1, unless retry is 0 and the header is
// already set. Write must be called before anything else is written to w.
func Write(w http.ResponseWriter, status int, code, msg string, details any, retry time.Duration) {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if retry > 0 || w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", strconv.FormatInt(Seconds(retry), 10))
		}
	}
	WriteJSON(w, status, Body(code, msg, details))
}

// Body returns the error body of code, msg and details, with a final
// newline; details that cannot be encoded become null.
func Body(code, msg string, details any) []byte {
	b, err := json.Marshal(body{Error: object{Code: code, Msg: msg, Details: details}})
	if err != nil {
		b, _ = json.Marshal(body{Error: object{Code: code, Msg: msg}})
	}
	return append(b, '\n')
}

// WriteJSON answers status with the JSON document b (no body for 204 and
// 304), replacing any Content-Length or Content-Encoding set before.
func WriteJSON(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Encoding")
	h.Set("Content-Type", "application/json")
	if status == http.StatusNoContent || status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// Seconds rounds d up to whole seconds, at least 1: the value of a
// Retry-After header.
func Seconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}
