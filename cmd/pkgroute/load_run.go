package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// ErrNoConnections is returned (with the report) when not one connection
// could be opened and authenticated.
var ErrNoConnections = errors.New("load: no connection could be opened")

// closeWait bounds the wait for the server's close frame when the run
// closes its connections.
const closeWait = time.Second

// RunLoad performs one run described by cfg and returns its report. It fails
// before connecting for an invalid configuration, a target that is not a
// loopback address (unless cfg.AllowRemote) or a failed login; when no
// connection could be opened it returns the report with
// ErrNoConnections. Cancelling ctx ends the run early (its report covers
// what was done).
func RunLoad(ctx context.Context, cfg LoadConfig) (*LoadReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.checkTargets(ctx); err != nil {
		return nil, err
	}
	r := newRunner(cfg)
	defer r.http.CloseIdleConnections()
	if cfg.Auth != AuthNone {
		r.token = cfg.Token
		if r.token == "" {
			if r.token, err = login(ctx, r.http, cfg.LoginURL, cfg.User, cfg.Password); err != nil {
				return nil, err
			}
		}
		if cfg.Auth == AuthHeader {
			r.header.Set("Authorization", "Bearer "+r.token)
		}
	}
	if cfg.Idle {
		return r.idle(ctx)
	}
	return r.load(ctx)
}

// runner holds one run's state.
type runner struct {
	cfg     LoadConfig
	token   string
	header  http.Header
	dialer  *websocket.Dialer
	http    *http.Client
	sources int // source addresses 127.0.0.1..sources; 0: any
	base    time.Time
	hist    histogram

	sent, ok, completed, unanswered, unmatched atomic.Int64
	frames                                     atomic.Int64
	outstanding                                atomic.Int64
	lastReply                                  atomic.Int64 // ns since base
	budget                                     atomic.Int64
	budgeted                                   bool
	closing                                    atomic.Bool
	writersDone                                atomic.Bool
	drained                                    chan struct{}
	drainOnce                                  sync.Once

	mu         sync.Mutex
	statuses   map[int]int64
	codes      map[string]int64
	closes     map[int]int64
	dialErrs   map[string]int64
	firstError string
}

type localAddrKey struct{}

func newRunner(cfg LoadConfig) *runner {
	r := &runner{
		cfg:      cfg,
		header:   http.Header{},
		http:     &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}},
		base:     time.Now(),
		drained:  make(chan struct{}),
		statuses: map[int]int64{},
		codes:    map[string]int64{},
		closes:   map[int]int64{},
		dialErrs: map[string]int64{},
	}
	r.header.Set("User-Agent", "pkgroute-load")
	if cfg.Protocol == ProtocolCentrifuge {
		r.header.Set("Sec-WebSocket-Protocol", "centrifuge-json")
	}
	if u, err := url.Parse(cfg.URL); err == nil {
		if ip := net.ParseIP(u.Hostname()); ip != nil && ip.To4() != nil && ip.IsLoopback() {
			r.sources = cfg.SourceAddrs
			if r.sources == 0 && cfg.Conns > 5000 {
				r.sources = min((cfg.Conns+4999)/5000, MaxSourceAddrs)
			}
		}
	}
	buf := 4096
	if cfg.Idle {
		buf = 1024 // the client's own footprint; the server's is measured
	}
	r.dialer = &websocket.Dialer{
		HandshakeTimeout: cfg.DialTimeout,
		ReadBufferSize:   buf,
		WriteBufferSize:  buf,
		Proxy:            nil,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{}
			if la, ok := ctx.Value(localAddrKey{}).(*net.TCPAddr); ok {
				d.LocalAddr = la
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	if cfg.Requests > 0 {
		r.budgeted = true
		r.budget.Store(cfg.Requests)
	}
	return r
}

func (r *runner) now() int64 { return int64(time.Since(r.base)) }

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf(format, args...)
	}
}

// login posts the credentials and returns the access token.
func login(ctx context.Context, client *http.Client, loginURL, user, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, loginURL, strings.NewReader(string(body)))
	if err != nil {
		return "", fmt.Errorf("load: login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("load: login: %w", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("load: login at %s: HTTP %d: %.200s", loginURL, res.StatusCode, strings.TrimSpace(string(raw)))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("load: login at %s: no access_token in the answer", loginURL)
	}
	return tok.AccessToken, nil
}

// conn is one connection of a run.
type conn struct {
	r     *runner
	ws    *websocket.Conn
	codec codec
	mask  uint64 // request numbers wrap at mask
	next  uint64
	slots chan struct{}
	done  chan struct{} // closed when the reader returns

	wmu sync.Mutex // one writer at a time (requests, pongs, close)

	mu      sync.Mutex
	pending map[uint64]int64 // request number -> send time
	dead    bool
}

// dialAll opens and authenticates cfg.Conns connections, at most
// DialConcurrency at once, within SetupTimeout. Failures are counted.
func (r *runner) dialAll(ctx context.Context) []*conn {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.SetupTimeout)
	defer cancel()
	all := make([]*conn, r.cfg.Conns)
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	var wg sync.WaitGroup
	var opened atomic.Int64
dial:
	for i := range all {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			r.dialFailed(fmt.Errorf("setup: %w", ctx.Err()), int64(len(all)-i))
			break dial
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := r.dial(ctx, i)
			if err != nil {
				r.dialFailed(err, 1)
				return
			}
			all[i] = c
			if n := opened.Add(1); n%1000 == 0 {
				r.logf("%d connections open", n)
			}
		})
	}
	wg.Wait()
	conns := all[:0]
	for _, c := range all {
		if c != nil {
			conns = append(conns, c)
		}
	}
	return conns
}

func (r *runner) dial(ctx context.Context, i int) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	if r.sources > 0 {
		ip := net.IPv4(127, 0, 0, byte(1+i%r.sources))
		ctx = context.WithValue(ctx, localAddrKey{}, &net.TCPAddr{IP: ip})
	}
	ws, res, err := r.dialer.DialContext(ctx, r.cfg.URL, r.header)
	if err != nil {
		if res != nil {
			return nil, &handshakeError{key: "http " + strconv.Itoa(res.StatusCode), err: err}
		}
		return nil, err
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	c := &conn{
		r:       r,
		ws:      ws,
		codec:   newCodec(&r.cfg, seed),
		mask:    idMask,
		slots:   make(chan struct{}, r.cfg.InFlight),
		done:    make(chan struct{}),
		pending: make(map[uint64]int64, r.cfg.InFlight),
	}
	if r.cfg.Protocol == ProtocolCentrifuge {
		c.mask = 1<<31 - 1
	}
	if err := c.codec.handshake(ctx, ws, r.token); err != nil {
		_ = ws.Close()
		return nil, err
	}
	for range r.cfg.InFlight {
		c.slots <- struct{}{}
	}
	go c.read()
	return c, nil
}

// dialFailed counts n failed connections under a short key.
func (r *runner) dialFailed(err error, n int64) {
	var he *handshakeError
	var ne net.Error
	key := "dial: other"
	switch {
	case errors.As(err, &he):
		key = he.key
	case errors.Is(err, syscall.ECONNREFUSED):
		key = "dial: connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		key = "dial: no local address"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		key = "dial: too many open files"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		key = "dial: timeout"
	case errors.Is(err, context.Canceled):
		key = "dial: cancelled"
	case errors.Is(err, websocket.ErrBadHandshake):
		key = "dial: bad handshake"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dialErrs[key] += n
	if r.firstError == "" {
		r.firstError = err.Error()
	}
}

// read is the connection's reader: it matches replies with their
// requests, answers pings and, when the connection ends, counts its close
// code and its unanswered requests.
func (c *conn) read() {
	defer close(c.done)
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			c.end(err)
			return
		}
		c.r.frames.Add(1)
		if pong := c.codec.parse(msg, c.onReply); pong != nil {
			c.wmu.Lock()
			_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			err := c.ws.WriteMessage(websocket.TextMessage, pong)
			c.wmu.Unlock()
			if err != nil {
				_ = c.ws.NetConn().Close()
			}
		}
	}
}

func (c *conn) end(err error) {
	r := c.r
	c.mu.Lock()
	c.dead = true
	n := int64(len(c.pending))
	clear(c.pending)
	c.mu.Unlock()
	if n > 0 {
		r.unanswered.Add(n)
		r.settle(r.outstanding.Add(-n))
	}
	if r.closing.Load() {
		return
	}
	code := websocket.CloseAbnormalClosure
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		code = ce.Code
	}
	r.mu.Lock()
	r.closes[code]++
	r.mu.Unlock()
}

func (c *conn) onReply(rep reply) {
	r := c.r
	now := r.now()
	sentAt, found := int64(0), false
	if rep.matched {
		c.mu.Lock()
		sentAt, found = c.pending[rep.id]
		delete(c.pending, rep.id)
		c.mu.Unlock()
	}
	if rep.status != 0 || rep.code != "" {
		r.mu.Lock()
		r.statuses[rep.status]++
		r.codes[rep.code]++
		r.mu.Unlock()
	}
	if !found {
		r.unmatched.Add(1)
		return
	}
	r.hist.Record(time.Duration(now - sentAt))
	r.completed.Add(1)
	if rep.status == 0 && rep.code == "" {
		r.ok.Add(1)
	}
	for {
		last := r.lastReply.Load()
		if now <= last || r.lastReply.CompareAndSwap(last, now) {
			break
		}
	}
	c.slots <- struct{}{}
	r.settle(r.outstanding.Add(-1))
}

// settle closes drained once the writers are done and nothing is
// outstanding.
func (r *runner) settle(outstanding int64) {
	if outstanding <= 0 && r.writersDone.Load() {
		r.drainOnce.Do(func() { close(r.drained) })
	}
}

// write sends requests while a slot is free, until stop, the budget is
// spent or the connection ends.
func (c *conn) write(stop <-chan struct{}) {
	r := c.r
	buf := make([]byte, 0, 128+len(r.cfg.Data))
	for {
		select {
		case <-stop:
			return
		case <-c.done:
			return
		case <-c.slots:
		}
		select {
		case <-stop:
			return
		default:
		}
		if r.budgeted && r.budget.Add(-1) < 0 {
			return
		}
		id := c.next & c.mask
		c.next++
		buf = c.codec.appendRequest(buf[:0], id)
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			return
		}
		c.pending[id] = r.now()
		c.mu.Unlock()
		r.outstanding.Add(1)
		r.sent.Add(1)
		c.wmu.Lock()
		err := c.ws.WriteMessage(websocket.TextMessage, buf)
		c.wmu.Unlock()
		if err != nil {
			_ = c.ws.NetConn().Close() // the reader ends and counts what was pending
			return
		}
	}
}

// closeAll closes every connection with 1000, waits for the server's
// close frame up to closeWait and for the readers to return.
func (r *runner) closeAll(conns []*conn) {
	r.closing.Store(true)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.wmu.Lock()
			err := c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeWait))
			c.wmu.Unlock()
			if err == nil {
				t := time.NewTimer(closeWait)
				select {
				case <-c.done:
				case <-t.C:
				}
				t.Stop()
			}
			_ = c.ws.Close()
			<-c.done
		})
	}
	wg.Wait()
}

// load runs the request phase.
func (r *runner) load(ctx context.Context) (*LoadReport, error) {
	conns := r.dialAll(ctx)
	rep := r.report(len(conns))
	if len(conns) == 0 {
		return rep, ErrNoConnections
	}
	r.logf("%d connections open; sending for up to %s", len(conns), r.cfg.Duration)
	before, beforeErr := r.sample()
	stop := make(chan struct{})
	var stopOnce sync.Once
	closeStop := func() { stopOnce.Do(func() { close(stop) }) }
	timer := time.AfterFunc(r.cfg.Duration, closeStop)
	defer timer.Stop()
	unhook := context.AfterFunc(ctx, closeStop)
	defer unhook()

	start := r.now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.write(stop) })
	}
	writing := make(chan struct{})
	go func() {
		wg.Wait()
		close(writing)
	}()
	select {
	case <-writing:
	case <-stop:
		// A writer blocked on a server that stopped reading is cut off
		// once the drain timeout passed.
		t := time.NewTimer(r.cfg.DrainTimeout)
		select {
		case <-writing:
		case <-t.C:
			for _, c := range conns {
				_ = c.ws.NetConn().Close()
			}
			<-writing
		}
		t.Stop()
	}
	r.writersDone.Store(true)
	r.settle(r.outstanding.Load())
	drain := time.NewTimer(r.cfg.DrainTimeout)
	select {
	case <-r.drained:
	case <-drain.C:
	case <-ctx.Done():
	}
	drain.Stop()
	end := r.now()
	after, afterErr := r.sample()
	r.closeAll(conns)

	rep = r.report(len(conns))
	if last := r.lastReply.Load(); last > start {
		end = last
	}
	rep.ElapsedSeconds = time.Duration(end - start).Seconds()
	if rep.ElapsedSeconds > 0 {
		rep.Throughput = float64(rep.Completed) / rep.ElapsedSeconds
	}
	if r.hist.Count() > 0 {
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		rep.Latency = &Latency{
			P50: us(r.hist.Quantile(0.50)), P90: us(r.hist.Quantile(0.90)),
			P99: us(r.hist.Quantile(0.99)), Max: us(r.hist.Max()), Mean: us(r.hist.Mean()),
		}
	}
	if r.cfg.PID > 0 {
		rep.Server = &ServerStats{PID: r.cfg.PID}
		if err := errors.Join(beforeErr, afterErr); err != nil {
			rep.Server.Error = err.Error()
		} else {
			rep.Server.CPUSeconds = (after.cpu - before.cpu).Seconds()
			rep.Server.RSSBeforeKB, rep.Server.RSSAfterKB = before.rssKB, after.rssKB
			if rep.Completed > 0 {
				rep.Server.CPUPerRequestMicros = rep.Server.CPUSeconds * 1e6 / float64(rep.Completed)
			}
		}
	}
	return rep, nil
}

// idle opens the connections, holds them for Duration and reports the
// server's memory and goroutines per connection.
func (r *runner) idle(ctx context.Context) (*LoadReport, error) {
	before, beforeErr := r.sample()
	gBefore, gBeforeErr := scrapeGoroutines(ctx, r.http, r.cfg.MetricsURL)
	conns := r.dialAll(ctx)
	if len(conns) == 0 {
		return r.report(0), ErrNoConnections
	}
	r.logf("%d connections open; holding them for %s", len(conns), r.cfg.Duration)
	hold := time.NewTimer(r.cfg.Duration)
	select {
	case <-hold.C:
	case <-ctx.Done():
	}
	hold.Stop()
	after, afterErr := r.sample()
	gAfter, gAfterErr := scrapeGoroutines(ctx, r.http, r.cfg.MetricsURL)
	r.mu.Lock()
	dropped := int64(0)
	for _, n := range r.closes {
		dropped += n
	}
	r.mu.Unlock()
	r.closeAll(conns)

	rep := r.report(len(conns))
	held := float64(int64(len(conns)) - dropped)
	rep.Held = int(held)
	if r.cfg.PID > 0 || (gBeforeErr == nil && gAfterErr == nil) {
		rep.Server = &ServerStats{PID: r.cfg.PID}
	}
	if r.cfg.PID > 0 {
		if err := errors.Join(beforeErr, afterErr); err != nil {
			rep.Server.Error = err.Error()
		} else {
			rep.Server.CPUSeconds = (after.cpu - before.cpu).Seconds()
			rep.Server.RSSBeforeKB, rep.Server.RSSAfterKB = before.rssKB, after.rssKB
			if held > 0 {
				rep.Server.RSSPerConnKB = float64(after.rssKB-before.rssKB) / held
			}
		}
	}
	if gBeforeErr == nil && gAfterErr == nil {
		rep.Server.GoroutinesBefore, rep.Server.GoroutinesAfter = &gBefore, &gAfter
		if held > 0 {
			rep.Server.GoroutinesPerConn = float64(gAfter-gBefore) / held
		}
	}
	return rep, nil
}

// sample reads the server's /proc figures; zero without a PID.
func (r *runner) sample() (procSample, error) {
	if r.cfg.PID <= 0 {
		return procSample{}, nil
	}
	s, err := readProc(r.cfg.PID)
	if errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("load: no process %d", r.cfg.PID)
	}
	return s, err
}

// report builds the report's counters from the run's state.
func (r *runner) report(connected int) *LoadReport {
	mode := "load"
	if r.cfg.Idle {
		mode = "idle"
	}
	rep := &LoadReport{
		Mode: mode, Protocol: r.cfg.Protocol, URL: r.cfg.URL,
		Conns: r.cfg.Conns, Connected: connected,
		DurationSeconds: r.cfg.Duration.Seconds(),
		Sent:            r.sent.Load(), Completed: r.completed.Load(), OK: r.ok.Load(),
		Unanswered: r.unanswered.Load(), Unmatched: r.unmatched.Load(), Frames: r.frames.Load(),
	}
	if !r.cfg.Idle {
		rep.InFlight = r.cfg.InFlight
		if r.cfg.Protocol == ProtocolPkgroute {
			rep.PkgID = r.cfg.PkgID
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	copyMap := func(m map[int]int64) map[int]int64 {
		if len(m) == 0 {
			return nil
		}
		out := make(map[int]int64, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	rep.Statuses = copyMap(r.statuses)
	rep.CloseCodes = copyMap(r.closes)
	if len(r.codes) > 0 {
		rep.ErrorCodes = make(map[string]int64, len(r.codes))
		for k, v := range r.codes {
			rep.ErrorCodes[k] = v
		}
	}
	if len(r.dialErrs) > 0 {
		rep.DialErrors = make(map[string]int64, len(r.dialErrs))
		for k, v := range r.dialErrs {
			rep.DialErrors[k] = v
		}
		rep.FirstDialError = r.firstError
	}
	return rep
}
