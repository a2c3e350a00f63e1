package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/pkgroute/pkgroute/audit/journal"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAuditJournalConfiguration(t *testing.T) {
	load := func(env map[string]string) (*config, error) {
		return loadConfig(func(k string) string { return env[k] })
	}
	c, err := load(nil)
	require.NoError(t, err)
	assert.Empty(t, c.AuditJournalDir)
	assert.Equal(t, journal.FsyncBatch, c.AuditJournalFsync)
	assert.False(t, c.AuditWriteAhead)
	assert.Zero(t, c.AuditQueueTimeout, "a full buffer drops at once")

	c, err = load(map[string]string{"AUDIT_JOURNAL_DIR": "/var/lib/authorsvc/audit", "AUDIT_JOURNAL_FSYNC": "never",
		"AUDIT_WRITE_AHEAD": "true", "AUDIT_QUEUE_TIMEOUT": "250ms"})
	require.NoError(t, err)
	assert.Equal(t, journal.FsyncNever, c.AuditJournalFsync)
	assert.True(t, c.AuditWriteAhead)
	assert.Equal(t, "250ms", c.AuditQueueTimeout.String())

	for env, name := range map[string]map[string]string{
		"AUDIT_WRITE_AHEAD":           {"AUDIT_WRITE_AHEAD": "true"},
		"AUDIT_JOURNAL_FSYNC":         {"AUDIT_JOURNAL_FSYNC": "sometimes"},
		"AUDIT_JOURNAL_MAX_BYTES":     {"AUDIT_JOURNAL_MAX_BYTES": "10"},
		"AUDIT_FLUSH_TIMEOUT_SECONDS": {"AUDIT_FLUSH_TIMEOUT_SECONDS": "0"},
		"AUDIT_QUEUE_TIMEOUT":         {"AUDIT_QUEUE_TIMEOUT": "-1s"},
	} {
		_, err := load(name)
		assert.ErrorContains(t, err, env)
	}
}

func TestAuditThroughTheJournalInWriteAheadMode(t *testing.T) {
	dir := t.TempDir()
	a := startApp(t, map[string]string{"AUDIT_JOURNAL_DIR": dir, "AUDIT_WRITE_AHEAD": "true", "AUDIT_BATCH_TIMEOUT": "20ms"})
	admin, reader := a.token(t, "admin"), a.token(t, "reader")
	code, _, _ := a.pkg(t, reader, int(Ping), `{"hello":"journal"}`)
	require.Equal(t, 200, code)
	c := a.dial(t, reader)
	m := call(t, c, int64(Ping), `{"over":"ws"}`)
	require.EqualValues(t, 0, m.StatusCode())
	page := a.auditLogs(t, admin, "action_type=WS:PING")
	assert.Equal(t, map[string]any{"over": "ws"}, page.Items[0]["request_data"])
	a.auditLogs(t, admin, "action_type=HTTP:PING")
}

func TestDebugAddrIsLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:6060": true, "[::1]:6060": true, "localhost:6060": true, "127.0.0.2:0": true,
		"0.0.0.0:6060": false, ":6060": false, "192.0.2.1:6060": false, "example.com:6060": false, "6060": false,
	} {
		_, err := loadConfig(func(k string) string {
			if k == "DEBUG_ADDR" {
				return addr
			}
			return ""
		})
		if ok {
			assert.NoError(t, err, addr)
		} else {
			assert.ErrorContains(t, err, "DEBUG_ADDR", addr)
		}
	}
}

func TestDebugAddrServesProfiles(t *testing.T) {
	debug := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startApp(t, map[string]string{"DEBUG_ADDR": debug})
	res, err := http.Get("http://" + debug + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
}

func TestEveryBadVariableIsReportedAtOnce(t *testing.T) {
	env := map[string]string{"RATE_LIMIT_PER_MINUTE": "lots", "HTTP_ADDR": "x", "AUDIT_JOURNAL_FSYNC": "sometimes", "DATABASE_URL": "mysql://db"}
	_, err := loadConfig(func(k string) string { return env[k] })
	var cerr *configError
	require.ErrorAs(t, err, &cerr)
	msg := err.Error()
	for name := range env {
		assert.Contains(t, msg, name)
	}
	assert.Equal(t, 1, strings.Count(msg, "invalid configuration:"), msg)
	assert.NotContains(t, msg, "\n")
}
