package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a private redis-server started by a test.
type RedisServer struct {
	// Addr is host:port of the server.
	Addr string

	t    testing.TB
	port int
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRedis starts a private redis-server on a free loopback port. It is
// stopped at cleanup.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Unavailable(t, "redis-server binary not installed")
	}
	port := FreePort(t)
	s := &RedisServer{t: t, port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.Start()
	t.Cleanup(func() {
		s.Resume()
		s.Stop()
	})
	return s
}

// URL returns redis://addr/0.
func (s *RedisServer) URL() string { return "redis://" + s.Addr + "/0" }

// Start starts the server (again) on its port and waits until it accepts
// connections.
func (s *RedisServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--dir", os.TempDir(), "--logfile", "")
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("testenv: start redis-server: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	waitTCP(s.t, s.Addr, s.done)
}

// Stop kills the server and waits for it to exit.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Pause stops the process with SIGSTOP: connections hang.
func (s *RedisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server.
func (s *RedisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *RedisServer) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// PostgresServer is a private PostgreSQL cluster started by a test.
type PostgresServer struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Dir is the data directory.
	Dir string

	t   testing.TB
	bin string
}

// postgresBin finds the PostgreSQL server binaries.
func postgresBin() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		if p, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p)
		}
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

// StartPostgres initialises and starts a private PostgreSQL cluster in a
// temporary directory on a free port. It is stopped at cleanup.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	bin := postgresBin()
	if bin == "" {
		Unavailable(t, "PostgreSQL server binaries (pg_ctl, initdb) not installed")
	}
	dir, err := os.MkdirTemp("", "pkgroute-pg-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	s := &PostgresServer{Port: FreePort(t), Dir: dir, t: t, bin: bin}
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "postgres:postgres", dir).Run(); err != nil {
			t.Fatalf("testenv: chown %s: %v", dir, err)
		}
	}
	s.run(filepath.Join(bin, "initdb"), "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync")
	s.Start()
	t.Cleanup(func() {
		s.Resume()
		s.Stop("immediate")
	})
	return s
}

func (s *PostgresServer) run(name string, args ...string) {
	s.t.Helper()
	if err := s.tryRun(name, args...); err != nil {
		s.t.Fatalf("testenv: %v", err)
	}
}

func (s *PostgresServer) tryRun(name string, args ...string) error {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %v: %s", filepath.Base(name), args, err, out.String())
	}
	return nil
}

// URL returns the connection URL of database db on the private server.
func (s *PostgresServer) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Start starts the server and waits until it accepts connections.
func (s *PostgresServer) Start() {
	s.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", s.Port, s.Dir)
	s.run(filepath.Join(s.bin, "pg_ctl"), "-D", s.Dir, "-o", opts, "-l", filepath.Join(s.Dir, "log"), "-w", "start")
}

// Stop stops the server with the given pg_ctl mode ("fast" or "immediate").
func (s *PostgresServer) Stop(mode string) {
	_ = s.tryRun(filepath.Join(s.bin, "pg_ctl"), "-D", s.Dir, "-m", mode, "-w", "stop")
}

// Restart stops the server with mode and starts it again.
func (s *PostgresServer) Restart(mode string) {
	s.t.Helper()
	s.Stop(mode)
	s.Start()
}

// Pause sends SIGSTOP to the postmaster and all its children.
func (s *PostgresServer) Pause() { s.signalAll(syscall.SIGSTOP) }

// Resume sends SIGCONT to the postmaster and all its children.
func (s *PostgresServer) Resume() { s.signalAll(syscall.SIGCONT) }

func (s *PostgresServer) signalAll(sig syscall.Signal) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "postmaster.pid"))
	if err != nil {
		return
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	if err != nil {
		return
	}
	_ = syscall.Kill(pid, sig)
	// Children of the postmaster: backends and auxiliary processes.
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(pid)).Output()
	for _, f := range bytes.Fields(out) {
		if c, err := strconv.Atoi(string(f)); err == nil {
			_ = syscall.Kill(c, sig)
		}
	}
}

func waitTCP(t testing.TB, addr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("testenv: server for %s exited during start-up", addr)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("testenv: %s did not accept connections within 10s", addr)
}
