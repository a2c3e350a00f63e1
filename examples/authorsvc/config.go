package main

import (
	"fmt"
	"github.com/pkgroute/pkgroute/audit/journal"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// config is the service configuration, read from the environment.
type config struct {
	HTTPAddr           string
	DatabaseURL        string
	RedisURL           string
	RedisKeyPrefix     string
	KeycloakBaseURL    string
	KeycloakRealm      string
	KeycloakClientID   string
	KeycloakSecret     string
	AuthLeeway         time.Duration
	AuthRealmRoles     bool
	RateLimitEnabled   bool
	RateLimitPerMinute int
	RateLimitBurst     int
	RateLimitFailOpen  bool
	WSMaxConnsPerUser  int
	WSMessageRate      int
	WSAbuseCloseAfter  int
	WSMaxMessageSize   int64
	WSAuthTimeout      time.Duration
	AllowedHosts       []string
	AllowedWSOrigins   []string
	TrustedProxies     []netip.Prefix
	MaxRequestBodySize int64
	AuditEnabled       bool
	AuditQueueMaxSize  int
	AuditBatchSize     int
	AuditBatchTimeout  time.Duration
	AuditQueueTimeout  time.Duration
	AuditRetentionDays int
	AuditJournalDir    string
	AuditJournalFsync  journal.Fsync
	AuditJournalMax    int64
	AuditWriteAhead    bool
	AuditFlushTimeout  time.Duration
	DebugAddr          string
	LogLevel           string
	LogFormat          string
	ShutdownTimeout    time.Duration
	devIssuer          bool // no Keycloak configured: the development issuer signs tokens
	databaseIsPostgres bool
	databaseSQLitePath string
}

// configError is a configuration mistake: start-up stops with exit code 2.
// more are the other mistakes found in the same configuration, reported on
// the same line.
type configError struct {
	name, value, why string
	more             []*configError
}

func (e *configError) Error() string {
	s := "invalid configuration: " + e.one()
	for _, m := range e.more {
		s += "; " + m.one()
	}
	return s
}

func (e *configError) one() string {
	if e.value == "" {
		return fmt.Sprintf("%s: %s", e.name, e.why)
	}
	return fmt.Sprintf("%s=%q: %s", e.name, e.value, e.why)
}

// loadConfig reads the configuration through getenv.
func loadConfig(getenv func(string) string) (*config, error) {
	p := envParser{getenv: getenv}
	return p.load()
}

func (p *envParser) load() (*config, error) {
	c := &config{
		HTTPAddr:           p.str("HTTP_ADDR", "127.0.0.1:8000"),
		DatabaseURL:        p.str("DATABASE_URL", "sqlite:authorsvc.db"),
		RedisURL:           p.str("REDIS_URL", ""),
		RedisKeyPrefix:     p.str("REDIS_KEY_PREFIX", "authorsvc:"),
		KeycloakBaseURL:    p.str("KEYCLOAK_BASE_URL", ""),
		KeycloakRealm:      p.str("KEYCLOAK_REALM", ""),
		KeycloakClientID:   p.str("KEYCLOAK_CLIENT_ID", ""),
		KeycloakSecret:     p.str("KEYCLOAK_CLIENT_SECRET", ""),
		AuthLeeway:         time.Duration(p.integer("AUTH_LEEWAY_SECONDS", 30, 0)) * time.Second,
		AuthRealmRoles:     p.boolean("AUTH_REALM_ROLES", false),
		RateLimitEnabled:   p.boolean("RATE_LIMIT_ENABLED", true),
		RateLimitPerMinute: p.integer("RATE_LIMIT_PER_MINUTE", 60, 1),
		RateLimitBurst:     p.integer("RATE_LIMIT_BURST", 0, 0),
		RateLimitFailOpen:  p.oneOf("RATE_LIMIT_FAIL_MODE", "open", "open", "closed") == "open",
		WSMaxConnsPerUser:  p.integer("WS_MAX_CONNECTIONS_PER_USER", 5, 0),
		WSMessageRate:      p.integer("WS_MESSAGE_RATE_LIMIT", 100, 0),
		WSAbuseCloseAfter:  p.integer("WS_ABUSE_CLOSE_AFTER", 20, 0),
		WSMaxMessageSize:   int64(p.integer("WS_MAX_MESSAGE_SIZE", 65536, 1)),
		WSAuthTimeout:      time.Duration(p.integer("WS_AUTH_TIMEOUT_SECONDS", 5, 1)) * time.Second,
		AllowedHosts:       p.list("ALLOWED_HOSTS", "*"),
		AllowedWSOrigins:   p.list("ALLOWED_WS_ORIGINS", ""),
		MaxRequestBodySize: int64(p.integer("MAX_REQUEST_BODY_SIZE", 1<<20, 1)),
		AuditEnabled:       p.boolean("AUDIT_LOG_ENABLED", true),
		AuditQueueMaxSize:  p.integer("AUDIT_QUEUE_MAX_SIZE", 10000, 1),
		AuditBatchSize:     p.integer("AUDIT_BATCH_SIZE", 1000, 1),
		AuditBatchTimeout:  p.duration("AUDIT_BATCH_TIMEOUT", time.Second),
		AuditQueueTimeout:  p.duration("AUDIT_QUEUE_TIMEOUT", 0),
		AuditRetentionDays: p.integer("AUDIT_LOG_RETENTION_DAYS", 365, 1),
		AuditJournalDir:    p.str("AUDIT_JOURNAL_DIR", ""),
		AuditJournalMax:    int64(p.integer("AUDIT_JOURNAL_MAX_BYTES", journal.DefaultMaxBytes, 1<<20)),
		AuditWriteAhead:    p.boolean("AUDIT_WRITE_AHEAD", false),
		AuditFlushTimeout:  time.Duration(p.integer("AUDIT_FLUSH_TIMEOUT_SECONDS", 10, 1)) * time.Second,
		DebugAddr:          p.str("DEBUG_ADDR", ""),
		LogLevel:           p.oneOf("LOG_LEVEL", "info", "debug", "info", "warn", "warning", "error"),
		LogFormat:          p.oneOf("LOG_FORMAT", "human", "human", "json"),
		ShutdownTimeout:    time.Duration(p.integer("SHUTDOWN_TIMEOUT_SECONDS", 10, 1)) * time.Second,
	}
	if f, err := journal.ParseFsync(p.oneOf("AUDIT_JOURNAL_FSYNC", "batch", "batch", "interval", "never")); err == nil {
		c.AuditJournalFsync = f
	}
	if c.DebugAddr != "" {
		if err := checkDebugAddr(c.DebugAddr); err != nil {
			p.fail("DEBUG_ADDR", c.DebugAddr, err.Error())
		}
	}
	if c.AuditWriteAhead && c.AuditJournalDir == "" {
		p.fail("AUDIT_WRITE_AHEAD", "true", "needs AUDIT_JOURNAL_DIR: a reply waits until its entry is in the journal")
	}
	for _, s := range p.list("TRUSTED_PROXIES", "") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				pfx = netip.PrefixFrom(a, a.BitLen())
			} else {
				p.fail("TRUSTED_PROXIES", s, "not a CIDR")
				continue
			}
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx)
	}
	for _, o := range c.AllowedWSOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			p.fail("ALLOWED_WS_ORIGINS", o, "want a full origin such as https://app.example.com:8443, or *")
		}
	}
	switch db := c.DatabaseURL; {
	case strings.HasPrefix(db, "sqlite:"):
		c.databaseSQLitePath = strings.TrimPrefix(db, "sqlite:")
		if c.databaseSQLitePath == "" {
			p.fail("DATABASE_URL", db, "sqlite: needs a path or :memory:")
		}
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		if _, err := url.Parse(db); err != nil {
			p.fail("DATABASE_URL", redact(db), "not a URL")
		}
		c.databaseIsPostgres = true
	default:
		p.fail("DATABASE_URL", redact(db), "unknown scheme; want sqlite:<path>, sqlite::memory: or postgres://")
	}
	if host, port, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		p.fail("HTTP_ADDR", c.HTTPAddr, "want host:port, e.g. 127.0.0.1:8000")
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		p.fail("HTTP_ADDR", c.HTTPAddr, "the port must be a number from 0 to 65535 or a service name")
	} else if ip, _, _ := strings.Cut(host, "%"); host != "" && net.ParseIP(ip) == nil && !validHostName(host) {
		p.fail("HTTP_ADDR", c.HTTPAddr, "not a host name or IP address")
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.fail("REDIS_URL", redact(c.RedisURL), "want redis://host:port/db")
		}
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			p.fail("REDIS_URL", redact(c.RedisURL), strings.TrimPrefix(err.Error(), "redis: "))
		}
	}
	set := 0
	for _, v := range []string{c.KeycloakBaseURL, c.KeycloakRealm, c.KeycloakClientID} {
		if v != "" {
			set++
		}
	}
	switch set {
	case 0:
		c.devIssuer = true
	case 3:
		u, err := url.Parse(c.KeycloakBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.fail("KEYCLOAK_BASE_URL", c.KeycloakBaseURL, "want http(s)://host[:port]")
		}
		c.KeycloakBaseURL = strings.TrimSuffix(c.KeycloakBaseURL, "/")
	default:
		var missing []string
		for _, v := range []struct{ name, value string }{
			{"KEYCLOAK_BASE_URL", c.KeycloakBaseURL}, {"KEYCLOAK_REALM", c.KeycloakRealm}, {"KEYCLOAK_CLIENT_ID", c.KeycloakClientID},
		} {
			if v.value == "" {
				missing = append(missing, v.name)
			}
		}
		p.fail(missing[0], "", "not set; KEYCLOAK_BASE_URL, KEYCLOAK_REALM and KEYCLOAK_CLIENT_ID are set together (or none of them for the development issuer); missing: "+strings.Join(missing, ", "))
	}
	if len(p.errs) > 0 {
		e := p.errs[0]
		e.more = p.errs[1:]
		return nil, e
	}
	return c, nil
}

// validHostName reports whether s is a DNS name (letters, digits, hyphens
// and dots).
func validHostName(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return len(s) <= 253
}

// redact hides the password of a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

type envParser struct {
	getenv func(string) string
	errs   []*configError
	vars   []envVar // every variable read, in order, for -h
}

// envVar is a variable the configuration reads and its default.
type envVar struct{ name, def string }

func (p *envParser) note(name, def string) {
	p.vars = append(p.vars, envVar{name, def})
}

func (p *envParser) raw(name string) string { return strings.TrimSpace(p.getenv(name)) }

// configVars returns every variable loadConfig reads, with its default.
func configVars() []envVar {
	p := envParser{getenv: func(string) string { return "" }}
	_, _ = p.load()
	return p.vars
}

// fail records a mistake; loadConfig reports them all at once.
func (p *envParser) fail(name, value, why string) {
	p.errs = append(p.errs, &configError{name: name, value: value, why: why})
}

func (p *envParser) str(name, def string) string {
	p.note(name, def)
	if v := p.raw(name); v != "" {
		return v
	}
	return def
}

func (p *envParser) integer(name string, def, minimum int) int {
	p.note(name, strconv.Itoa(def))
	v := p.raw(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, "not an integer")
		return def
	}
	if n < minimum {
		p.fail(name, v, fmt.Sprintf("must be at least %d", minimum))
		return def
	}
	return n
}

func (p *envParser) boolean(name string, def bool) bool {
	p.note(name, strconv.FormatBool(def))
	v := p.raw(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "want true or false")
		return def
	}
	return b
}

// duration reads a duration (a bare number means seconds). It must be
// positive, or may be 0 where the default is 0 (off).
func (p *envParser) duration(name string, def time.Duration) time.Duration {
	p.note(name, def.String())
	v := p.raw(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		// A bare number means seconds.
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			p.fail(name, v, "want a duration such as 1s or 500ms")
			return def
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 || d == 0 && def != 0 {
		p.fail(name, v, "must be positive")
		return def
	}
	return d
}

func (p *envParser) oneOf(name, def string, allowed ...string) string {
	p.note(name, def+" (one of "+strings.Join(allowed, ", ")+")")
	v := strings.ToLower(p.raw(name))
	if v == "" {
		v = def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, v, "want one of "+strings.Join(allowed, ", "))
	return def
}

func (p *envParser) list(name, def string) []string {
	p.note(name, def)
	v := p.raw(name)
	if v == "" {
		v = def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
