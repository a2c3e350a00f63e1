package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// removeBinary deletes the binary built by buildBinary, if any (TestMain).
func removeBinary() {
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
	}
}

// builtDir holds the binary of buildBinary; empty until it ran.
var builtDir string

// buildBinary builds the service once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "authorsvc-bin-")
	if err != nil {
		return "", err
	}
	builtDir = dir
	bin := filepath.Join(dir, "authorsvc")
	args := append([]string{"build"}, buildFlags...)
	out, err := exec.Command("go", append(args, "-o", bin, ".")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v: %s", err, out)
	}
	return bin, nil
})

// TestSIGTERM runs the real binary, keeps WebSocket clients busy and sends
// SIGTERM: every reply of a request sent before the signal is delivered,
// the clients are closed with 1001 and the process exits 0 within
// SHUTDOWN_TIMEOUT_SECONDS.
func TestSIGTERM(t *testing.T) {
	bin, err := buildBinary()
	require.NoError(t, err)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HTTP_ADDR="+addr, "SHUTDOWN_TIMEOUT_SECONDS=5", "WS_MESSAGE_RATE_LIMIT=0", "LOG_FORMAT=json")
	var stderr testenv.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	a := &app{base: "http://" + addr, stdout: &stderr, stderr: &stderr}
	require.Eventually(t, func() bool { code, err := httpGet(a.base + "/health"); return err == nil && code == 200 }, 20*time.Second, 50*time.Millisecond, "%s", stderr.String())
	_, err = os.Stat(filepath.Join(dir, "authorsvc.db"))
	require.NoError(t, err, "the default SQLite file is created in the working directory")

	tok := a.token(t, "writer")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const clients, calls = 4, 50
	var conns []*wstest.Client
	for range clients {
		c, err := wstest.Dial(ctx, a.wsURL(), tok)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered, succeeded, failed := 0, 0, 0
	firstAnswers := make(chan struct{}, clients*calls)
	for _, c := range conns {
		for range calls {
			wg.Go(func() {
				m, err := c.Call(ctx, 10, map[string]int{"n": 1})
				firstAnswers <- struct{}{}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && m.StatusCode() == router.StatusOK:
					answered++
					succeeded++
				case err == nil && m.Error().Code == router.CodeServiceUnavailable:
					answered++ // arrived while draining
				case errors.Is(err, wstest.ErrClosed):
					failed++ // sent after the drain closed the connection
				default:
					t.Errorf("call: %v %v", err, m)
				}
			})
		}
	}
	// Signal while calls are in flight: some are answered already.
	for range clients * calls / 4 {
		<-firstAnswers
	}
	start := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	wg.Wait()
	for _, c := range conns {
		ce, err := c.Wait(ctx)
		if err != nil && !errors.Is(err, wstest.ErrClosed) {
			require.NoError(t, err)
		}
		require.NotNil(t, ce)
		assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	}
	select {
	case err := <-exited:
		exited <- err
		require.NoError(t, err, "exit status; log:\n%s", stderr.String())
	case <-time.After(6 * time.Second):
		t.Fatalf("no exit within SHUTDOWN_TIMEOUT_SECONDS; log:\n%s", stderr.String())
	}
	t.Logf("shutdown took %v; %d calls answered (%d served), %d refused by the closing connection", time.Since(start), answered, succeeded, failed)
	assert.Positive(t, answered)

	// The audit queue was flushed before exit: every served call is a row.
	db, err := dbopen.Open(context.Background(), "sqlite:"+filepath.Join(dir, "authorsvc.db"), dbopen.Config{})
	require.NoError(t, err)
	defer db.Close()
	var rows int
	require.NoError(t, db.NewSelect().Table("user_actions").Where("action_type = ?", "WS:PING").ColumnExpr("count(*)").Scan(context.Background(), &rows))
	if !assert.GreaterOrEqual(t, rows, succeeded) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			if !strings.Contains(line, `"http request"`) {
				t.Log(line)
			}
		}
	}
}
