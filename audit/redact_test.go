package audit_test

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testJWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"

func TestRedactJSON(t *testing.T) {
	r := audit.NewRedactor()
	tests := []struct {
		name, in, want string
	}{
		{"flat", `{"name":"ada","password":"hunter2"}`, `{"name":"ada","password":"[REDACTED]"}`},
		{"mixed case keys", `{"PassWord":"a","API_KEY":"b","Api-Key":"c","Authorization":"d","CVV":123}`,
			`{"API_KEY":"[REDACTED]","Api-Key":"[REDACTED]","Authorization":"[REDACTED]","CVV":"[REDACTED]","PassWord":"[REDACTED]"}`},
		{"every default key", `{"password":1,"passwd":1,"pwd":1,"token":1,"access_token":1,"refresh_token":1,"secret":1,"api_key":1,"private_key":1,"authorization":1,"ssn":1,"credit_card":1,"card_number":1,"cvv":1,"ok":1}`,
			`{"access_token":"[REDACTED]","api_key":"[REDACTED]","authorization":"[REDACTED]","card_number":"[REDACTED]","credit_card":"[REDACTED]","cvv":"[REDACTED]","ok":1,"passwd":"[REDACTED]","password":"[REDACTED]","private_key":"[REDACTED]","pwd":"[REDACTED]","refresh_token":"[REDACTED]","secret":"[REDACTED]","ssn":"[REDACTED]","token":"[REDACTED]"}`},
		{"nested objects", `{"user":{"profile":{"Secret":{"deep":1},"name":"x"}}}`, `{"user":{"profile":{"Secret":"[REDACTED]","name":"x"}}}`},
		{"nested arrays", `{"cards":[{"card_number":"4111","exp":"12/30"},[{"CVV":"123"}],"plain"]}`,
			`{"cards":[{"card_number":"[REDACTED]","exp":"12/30"},[{"CVV":"[REDACTED]"}],"plain"]}`},
		{"top-level array", `[{"token":"t"},{"a":[{"ssn":"1"}]}]`, `[{"token":"[REDACTED]"},{"a":[{"ssn":"[REDACTED]"}]}]`},
		{"whole object under a key", `{"secret":{"a":[1,2]}}`, `{"secret":"[REDACTED]"}`},
		{"bearer value under any key", `{"note":"sent Bearer abc.def-ghi"}`, `{"note":"sent Bearer [REDACTED]"}`},
		{"jwt value in array", `{"list":["x","` + testJWT + `"]}`, `{"list":["x","[REDACTED]"]}`},
		{"no secrets: kept byte for byte", `{"n":12345678901234567890, "f":1.50, "b":[{"a":"x"}]}`, `{"n":12345678901234567890, "f":1.50, "b":[{"a":"x"}]}`},
		{"numbers kept exactly when rewritten", `{"n":12345678901234567890,"f":1.50,"pwd":"x"}`, `{"f":1.50,"n":12345678901234567890,"pwd":"[REDACTED]"}`},
		{"similar keys kept", `{"password_hint":"p","tokens_left":3}`, `{"password_hint":"p","tokens_left":3}`},
		{"null", `null`, ``},
		{"empty", ``, ``},
		{"not json", `password=x&token=Bearer abc`, `"password=x\u0026token=Bearer [REDACTED]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, string(r.JSON(json.RawMessage(tt.in))))
		})
	}
}

func TestRedactConfigurableKeys(t *testing.T) {
	r := audit.NewRedactor(append(audit.DefaultRedactKeys(), "pin")...)
	assert.JSONEq(t, `{"PIN":"[REDACTED]","password":"[REDACTED]","name":"x"}`,
		string(r.JSON(json.RawMessage(`{"PIN":"1234","password":"p","name":"x"}`))))
	only := audit.NewRedactor("email")
	assert.JSONEq(t, `{"email":"[REDACTED]","password":"p"}`,
		string(only.JSON(json.RawMessage(`{"email":"a@b","password":"p"}`))))
}

func TestRedactText(t *testing.T) {
	r := audit.NewRedactor()
	tests := []struct{ in, want string }{
		{"Bearer abc123", "Bearer [REDACTED]"},
		{"authorization: bearer   abc/def+ghi==", "authorization: Bearer [REDACTED]"},
		{"BEARER%20abc", "Bearer [REDACTED]"},
		{"token " + testJWT + " end", "token [REDACTED] end"},
		{"curl/8.0", "curl/8.0"},
		{"a bearer of news", "a Bearer [REDACTED] news"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, r.Text(tt.in), tt.in)
	}
}

func TestLogRedactsEveryField(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	bearer := "Bearer " + testJWT
	require.NoError(t, l.Log(context.Background(), audit.Entry{
		UserID:       "u\x00" + testJWT,
		Username:     "ada",
		UserRoles:    []string{"r", bearer},
		ActionType:   "HTTP:GET",
		Resource:     "/x?access_token=" + testJWT,
		UserAgent:    "agent " + bearer,
		IPAddress:    testJWT,
		Outcome:      audit.Outcome("custom " + bearer),
		RequestID:    bearer,
		RequestData:  json.RawMessage(`{"headers":{"Authorization":"` + bearer + `"},"items":[{"Token":"t"},"` + testJWT + `"],"q":"` + bearer + `"}`),
		ErrorMessage: "invalid token " + bearer + " \xff",
	}))
	require.NoError(t, l.Close(context.Background()))
	rows := sink.stored()
	require.Len(t, rows, 1)
	b, err := json.Marshal(rows[0])
	require.NoError(t, err)
	s := string(b)
	assert.NotContains(t, s, testJWT)
	assert.NotContains(t, s, "eyJ")
	assert.NotContains(t, strings.ToLower(s), "bearer ey")
	assert.NotContains(t, s, `\u0000`)
	assert.Contains(t, s, `"Authorization":"[REDACTED]"`)
	assert.Contains(t, s, `"Token":"[REDACTED]"`)
	assert.Equal(t, "HTTP:GET", rows[0].ActionType)
}

func TestLogBoundsLargeFields(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	big := strings.Repeat("é", 5000)
	fields := make([]string, 20)
	for i := range fields {
		fields[i] = `"f` + strconv.Itoa(i) + `":"` + strings.Repeat("x", 1500) + `"`
	}
	bigObject := "{" + strings.Join(fields, ",") + "}"
	require.NoError(t, l.Log(context.Background(), audit.Entry{
		ErrorMessage: big,
		RequestData:  json.RawMessage(bigObject),
		Timestamp:    time.Now(),
	}))
	require.NoError(t, l.Close(context.Background()))
	e := sink.stored()[0]
	assert.LessOrEqual(t, len(e.ErrorMessage), 2048)
	assert.True(t, json.Valid(e.RequestData))
	assert.JSONEq(t, `{"_truncated":true}`, string(e.RequestData))
}

func TestRedactKeyMatching(t *testing.T) {
	r := audit.NewRedactor()
	sensitive := []string{
		"password", "PASSWORD", "new_password", "old_password", "New-Password", "newPassword", "user_pwd",
		"client_secret", "clientSecret", "x-api-key", "X-API-KEY", "apiKey", "API_KEY", "x_api_key",
		"refresh_token", "refreshToken", "id_token", "csrf-token", "Proxy-Authorization",
		"user_ssn", "userSSN", "backup_credit_card", "creditCard", "cardNumber", "card_cvv", "rsa_private_key",
	}
	kept := []string{
		"passwords_count", "password_hint", "password_changed_at", "tokens_left", "token_count",
		"userpassword", "mypwd", "secrets", "api_keys", "api", "key", "card", "number", "access", "author",
		"cvv2", "ssn_last4", "", "_",
	}
	for _, k := range sensitive {
		assert.True(t, r.Sensitive(k), "%q is sensitive", k)
	}
	for _, k := range kept {
		assert.False(t, r.Sensitive(k), "%q is kept", k)
	}
	in := `{"new_password":"a","OldPassword":"b","client_secret":"c","x-api-key":"d","apiKey":"e","passwords_count":2,"list":[{"refresh_token":"f"}]}`
	assert.JSONEq(t,
		`{"new_password":"[REDACTED]","OldPassword":"[REDACTED]","client_secret":"[REDACTED]","x-api-key":"[REDACTED]","apiKey":"[REDACTED]","passwords_count":2,"list":[{"refresh_token":"[REDACTED]"}]}`,
		string(r.JSON(json.RawMessage(in))))

	pin := audit.NewRedactor("pin")
	assert.True(t, pin.Sensitive("card_pin"))
	assert.True(t, pin.Sensitive("cardPIN"), "camel case with an upper-case word")
	assert.False(t, pin.Sensitive("spin"))
	assert.False(t, pin.Sensitive("password"), "only the configured keys")
	assert.JSONEq(t, `{"cardPin":"[REDACTED]","spin":1}`, string(pin.JSON(json.RawMessage(`{"cardPin":"1","spin":1}`))))
}

func TestLogKeepsStatusesStorable(t *testing.T) {
	sink := newMemSink()
	l := audit.New(audit.Config{Sink: sink})
	require.NoError(t, l.Log(context.Background(), audit.Entry{ActionType: "A", ResponseStatus: audit.Status(1 << 40)}))
	require.NoError(t, l.Log(context.Background(), audit.Entry{ActionType: "B", ResponseStatus: audit.Status(-(1 << 40))}))
	require.NoError(t, l.Log(context.Background(), audit.Entry{ActionType: "C", ResponseStatus: audit.Status(404)}))
	require.NoError(t, l.Close(context.Background()))
	rows := sink.stored()
	require.Len(t, rows, 3)
	assert.Equal(t, math.MaxInt32, *rows[0].ResponseStatus)
	assert.Equal(t, math.MinInt32, *rows[1].ResponseStatus)
	assert.Equal(t, 404, *rows[2].ResponseStatus)
}
