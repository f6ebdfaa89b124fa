package agenttrust

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/optcheck"
	"github.com/agenttrustid/agenttrust-go/internal/transport"
)

// Version is the SDK version, sent in the User-Agent header.
const Version = "0.3.0"

// DefaultBaseURL is the gateway URL used when none is configured, in the
// constructor, the environment loader and the config file alike.
const DefaultBaseURL = "http://localhost:8080"

// DefaultTimeout bounds each call, retries included.
const DefaultTimeout = 30 * time.Second

// DefaultRetryPolicy is the retry policy of a new Client: two retries of
// requests that are safe to repeat, 250 ms doubling to 4 s with jitter, and a
// server's Retry-After honoured up to 10 s.
var DefaultRetryPolicy = RetryPolicy{
	MaxRetries:     2,
	InitialBackoff: 250 * time.Millisecond,
	MaxBackoff:     4 * time.Second,
	MaxRetryAfter:  10 * time.Second,
}

// RetryPolicy says how the Client retries. Requests that are safe to repeat
// (every GET and DELETE, token introspection, action checks) are retried after
// a transport failure and after 429, 502, 503 and 504. Other requests are
// re-sent only when the connection failed before anything was written.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt; 0 disables
	// retries.
	MaxRetries int
	// InitialBackoff is the first delay; it doubles on each retry, with jitter.
	InitialBackoff time.Duration
	// MaxBackoff caps the computed delay.
	MaxBackoff time.Duration
	// MaxRetryAfter caps a delay asked for by the server's Retry-After header.
	MaxRetryAfter time.Duration
}

// Client talks to an AgentTrust gateway and its auth and audit services.
//
// A Client is safe for concurrent use by many goroutines and should be
// reused: it holds the connection pool and the token cache. Its configuration
// is fixed at construction; only the API key can change (SetAPIKey).
//
// Lifetime: create one Client per gateway and keep it for the life of the
// program. Idle keep-alive connections (two goroutines each) stay open for
// up to 90 s after their last use; a program that creates short-lived
// Clients, such as one per job or per test, should call Close when done
// with each.
//
// Connections: on its own transport (no Transport given with
// WithHTTPClient, no proxy), a Client dials a service only for a call that
// has no connection yet. When net/http would dial one that no waiting call
// needs (a call's freed connection went to another call that was still
// dialing), the dial is held back, for at most a few hundred milliseconds,
// and dropped: 64 goroutines sharing a Client hold at most 64 connections.
type Client struct {
	// Agents registers, reads, lists and revokes agents.
	Agents *AgentsService
	// Tokens issues (with a cache), introspects and revokes agent tokens.
	Tokens *TokensService
	// Actions asks the Guardian whether an agent may perform an action.
	Actions *ActionsService
	// Telemetry reports what tools did.
	Telemetry *TelemetryService
	// Sessions opens and reads MCP and API sessions.
	Sessions *SessionsService
	// Approvals decides and reads elevation approvals.
	Approvals *ApprovalsService
	// AgentCards generates, reads and publishes A2A agent cards.
	AgentCards *AgentCardsService
	// A2A sends agent-to-agent tasks and messages (JSON-RPC).
	A2A *A2AService
	// MCP registers MCP servers and calls their tools through the gateway.
	MCP *MCPService
	// Delegations delegates scopes between agents.
	Delegations *DelegationsService
	// Federation registers external identity providers and introspects
	// their tokens.
	Federation *FederationService
	// Streaming manages SIEM destinations for audit event streaming.
	Streaming *StreamingService
	// WIMSE issues and verifies WIMSE workload tokens, with proof of
	// possession of the agent's key.
	WIMSE *WIMSEService

	common service

	baseURL, authURL, auditURL string
	// endpoints are the three URLs as requests use them, indexed by
	// baseKind: without user info, which goes in an Authorization header
	// instead, so that no transport error or log line can show it.
	endpoints [3]endpoint
	timeout   time.Duration
	apiKey    atomic.Pointer[string]
	logger    *slog.Logger
	tr        *transport.Transport
	tokens    *tokenCache
	now       func() time.Time
	creds     atomic.Pointer[AgentCredentials] // installed agent credentials; nil: none
	obs       *observer                        // nil: no Observer installed

	// idle closes the idle connections of a transport the Client owns;
	// nil when the caller's own transport is used (WithHTTPClient).
	idle   func()
	closed atomic.Bool
	// gate holds back dials no request needs; nil unless the Client built
	// its transport itself.
	gate *transport.DialGate
}

// service is the shared base of every sub-client; each service type is a
// conversion of it, so wiring them costs no allocation.
type service struct{ client *Client }

// Option configures a Client. Options validate their input; an invalid one
// makes New return an error.
type Option func(*config) error

type config struct {
	baseURL, authURL, auditURL string
	apiKey                     string
	timeout                    time.Duration
	httpClient                 *http.Client
	insecure                   bool
	logger                     *slog.Logger
	retry                      RetryPolicy
	uaSuffix                   string
	cacheSize                  int
	sleep                      func(context.Context, time.Duration) error
	now                        func() time.Time
	observer                   *Observer
	gateWait                   time.Duration // tests: the dial gate's wait; 0: the default
}

// WithBaseURL sets the gateway URL (default http://localhost:8080). It must be
// an absolute http or https URL with a host and no query or fragment; trailing
// slashes are stripped and a path prefix is kept.
func WithBaseURL(u string) Option {
	return func(c *config) error { c.baseURL = u; return nil }
}

// WithAuthURL sets the auth service URL (tokens and action checks). Empty
// means derived from the base URL.
func WithAuthURL(u string) Option {
	return func(c *config) error { c.authURL = u; return nil }
}

// WithAuditURL sets the audit service URL (telemetry). Empty means derived
// from the base URL.
func WithAuditURL(u string) Option {
	return func(c *config) error { c.auditURL = u; return nil }
}

// WithAPIKey sets the API key sent as X-API-Key. Empty sends no header. A
// key with a control character (a trailing newline read from a file, say)
// cannot be sent in a header and is a configuration error.
func WithAPIKey(key string) Option {
	return func(c *config) error {
		if !validHeaderValue(key) {
			return errors.New(errAPIKeyBytes)
		}
		c.apiKey = key
		return nil
	}
}

// WithTimeout bounds every call, retries included (default 30 s). The
// caller's context can only shorten it.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithHTTPClient makes the Client send requests through a copy of hc. The
// copy is changed to follow no redirects; hc itself is never modified. A nil
// Transport in hc means the SDK's own pooled transport.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil *http.Client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithInsecureSkipVerify turns TLS certificate and host name verification
// off, for development gateways with self-signed certificates. New logs a
// warning when it is used.
func WithInsecureSkipVerify() Option {
	return func(c *config) error { c.insecure = true; return nil }
}

// WithLogger sets the logger for warnings and debug records (retries). Nil
// means silent, the default. The SDK never logs API keys or tokens.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *config) error {
		if p.MaxRetries < 0 || p.InitialBackoff < 0 || p.MaxBackoff < 0 || p.MaxRetryAfter < 0 {
			return errors.New("WithRetryPolicy: negative value")
		}
		c.retry = p
		return nil
	}
}

// WithUserAgentSuffix appends s to the User-Agent, e.g. "my-agent/1.2", for
// frameworks and applications built on the SDK.
func WithUserAgentSuffix(s string) Option {
	return func(c *config) error {
		if !validHeaderValue(s) {
			return errors.New("WithUserAgentSuffix: control character (such as a line break) in suffix")
		}
		c.uaSuffix = s
		return nil
	}
}

// WithTokenCacheSize bounds the token cache (default 1024 entries).
func WithTokenCacheSize(n int) Option {
	return func(c *config) error { return optcheck.PositiveSize("WithTokenCacheSize", n, &c.cacheSize) }
}

// New returns a Client configured by opts. Without options it talks to
// http://localhost:8080 with no API key. Invalid options, such as a URL
// without a scheme or a negative timeout, return a *ValidationError.
func New(opts ...Option) (*Client, error) {
	cfg := config{
		baseURL:   DefaultBaseURL,
		timeout:   DefaultTimeout,
		retry:     DefaultRetryPolicy,
		cacheSize: defaultCacheSize,
		now:       time.Now,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, configErr(err)
		}
	}
	return newClient(cfg)
}

// configErr wraps a configuration failure, keeping its cause so that, for
// example, errors.Is(err, fs.ErrNotExist) works for a missing config file.
func configErr(err error) error {
	return NewError(CodeValidation, "invalid configuration: "+err.Error(), err)
}

func newClient(cfg config) (*Client, error) {
	if cfg.baseURL == "" {
		cfg.baseURL = DefaultBaseURL
	}
	base, err := parseBaseURL("base URL", cfg.baseURL)
	if err != nil {
		return nil, configErr(err)
	}
	auth, err := serviceURL("auth URL", cfg.authURL, base, "8082")
	if err != nil {
		return nil, configErr(err)
	}
	audit, err := serviceURL("audit URL", cfg.auditURL, base, "8084")
	if err != nil {
		return nil, configErr(err)
	}
	logger := cfg.logger
	if logger == nil {
		logger = transport.Discard()
	}
	hc, err := buildHTTPClient(cfg.httpClient, cfg.insecure)
	if err != nil {
		return nil, configErr(err)
	}
	var idle func()
	if cfg.httpClient == nil || cfg.httpClient.Transport == nil || cfg.insecure {
		// The transport is the SDK's own (or its own clone of the caller's).
		idle = hc.CloseIdleConnections
	}
	if cfg.insecure {
		logger.Warn("agenttrust: TLS certificate verification is disabled; use this only against development gateways")
	}
	ua := "agenttrust-go/" + Version + " (" + runtime.GOOS + "/" + runtime.GOARCH + "; " + runtime.Version() + ")"
	if cfg.uaSuffix != "" {
		ua += " " + cfg.uaSuffix
	}
	c := &Client{
		baseURL:  strings.TrimRight(base.String(), "/"),
		authURL:  auth,
		auditURL: audit,
		timeout:  cfg.timeout,
		logger:   logger,
		tr: transport.New(transport.Config{
			HTTPClient: hc,
			UserAgent:  ua,
			Retry:      transport.RetryPolicy(cfg.retry),
			Sleep:      cfg.sleep,
			Logger:     logger,
		}),
		tokens: newTokenCache(cfg.cacheSize, cfg.now),
		now:    cfg.now,
		idle:   idle,
	}
	for i, u := range []string{c.baseURL, c.authURL, c.auditURL} {
		c.endpoints[i] = newEndpoint(u)
	}
	if cfg.httpClient == nil || cfg.httpClient.Transport == nil {
		// The SDK's own pooled transport (perhaps cloned for
		// WithInsecureSkipVerify): never a transport the caller passed in.
		if t, ok := hc.Transport.(*http.Transport); ok {
			c.gate = gateDials(t, &c.endpoints, cfg.gateWait)
		}
	}
	c.apiKey.Store(&cfg.apiKey)
	c.common.client = c
	c.Agents = (*AgentsService)(&c.common)
	c.Tokens = (*TokensService)(&c.common)
	c.Actions = (*ActionsService)(&c.common)
	c.Telemetry = (*TelemetryService)(&c.common)
	c.Sessions = (*SessionsService)(&c.common)
	c.Approvals = (*ApprovalsService)(&c.common)
	c.WIMSE = (*WIMSEService)(&c.common)
	c.tokens.fetch = c.Tokens.issue
	c.initObserver(cfg.observer)
	c.initProtocols()
	return c, nil
}

// newPooledTransport returns an http.Transport sized for many concurrent
// agents: Go's default keeps only 2 idle connections per host, so bursts of
// checks would churn connections.
func newPooledTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

// gateDials puts a dial gate in front of t, which the Client owns, and gives
// each endpoint the slot of the address its connections are dialed to.
//
// Without it, 64 goroutines checking at once open noticeably more than 64
// connections: a request waiting for its dial is handed a connection another
// request just freed, and the dial then adds one nobody needs to the pool.
// The gate lets a dial start only while a request to that address has no
// connection and no dial on its way. An endpoint reached through a proxy, or
// whose address other endpoints reach with another scheme, is left ungated.
func gateDials(t *http.Transport, eps *[3]endpoint, wait time.Duration) *transport.DialGate {
	var addrs [3]string
	schemes := make(map[string]string, len(eps))
	mixed := make(map[string]bool)
	for i := range eps {
		scheme, addr := dialAddr(t, eps[i].url)
		if addr == "" {
			continue
		}
		if s, ok := schemes[addr]; ok && s != scheme {
			mixed[addr] = true
		}
		schemes[addr] = scheme
		addrs[i] = addr
	}
	var g *transport.DialGate
	for i := range eps {
		if addrs[i] == "" || mixed[addrs[i]] {
			continue
		}
		if g == nil {
			g = transport.NewDialGate(t.DialContext, wait)
		}
		eps[i].gate = g.Slot(addrs[i])
	}
	if g != nil {
		t.DialContext = g.DialContext
	}
	return g
}

// dialAddr returns the scheme of the service URL raw and the address t
// dials for it ("host:port", default port filled in), or no address when
// the connection goes through a proxy or the host is not plain ASCII (which
// net/http converts before dialing).
func dialAddr(t *http.Transport, raw string) (scheme, addr string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", ""
	}
	if t.Proxy != nil {
		if p, err := t.Proxy(&http.Request{URL: u}); err != nil || p != nil {
			return "", ""
		}
	}
	host := u.Hostname()
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "", ""
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme, net.JoinHostPort(host, port)
}

func buildHTTPClient(user *http.Client, insecure bool) (*http.Client, error) {
	var hc http.Client
	if user != nil {
		hc = *user // a copy: the caller's client is never modified
	}
	if hc.Transport == nil {
		hc.Transport = newPooledTransport()
	}
	if insecure {
		t, ok := hc.Transport.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("WithInsecureSkipVerify needs an *http.Transport, the HTTP client has %T", hc.Transport)
		}
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // asked for explicitly
		hc.Transport = t
	}
	// Never follow redirects: a 3xx becomes an HTTP_3xx error, so the API key
	// never travels to another host.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc, nil
}

func parseBaseURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %v", what, redactURL(raw), errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%s %q: scheme must be http or https", what, redactURL(raw))
	case u.Host == "":
		return nil, fmt.Errorf("%s %q: no host", what, redactURL(raw))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%s %q: must have no query or fragment", what, redactURL(raw))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, nil
}

// endpoint is a service URL split for sending: the URL without user info,
// and the Basic credentials net/http would have derived from it.
type endpoint struct {
	url string
	// gate is the dial gate's slot of the URL's address; nil: not gated.
	gate *transport.GateSlot
	// authorization is the Authorization header value for the URL's user
	// info ("" when it has none); user and password are its parts, redacted
	// from error text like the API key.
	authorization  string
	user, password string
}

// newEndpoint splits u, a URL that parseBaseURL accepted. A request then
// carries the same Basic credentials as before, with the same precedence
// (an explicit Authorization header wins), but the URL in transport errors
// and retry logs has no user info left to show.
func newEndpoint(u string) endpoint {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return endpoint{url: u}
	}
	user := p.User.Username()
	pass, _ := p.User.Password()
	p.User = nil
	return endpoint{
		url:           p.String(),
		authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)),
		user:          user,
		password:      pass,
	}
}

// redactURL hides the user info of a URL (user name and password: either
// may hold a key), for error messages. A URL that does not parse, or parses
// oddly ("user:pass@host" has the scheme "user"), is exactly the one that
// ends up in an error, so for it everything between "//" and the last "@"
// is hidden.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		at := strings.LastIndexByte(raw, '@')
		if at < 0 {
			return raw
		}
		start := strings.Index(raw, "//") + 2
		if start < 2 || start > at {
			start = 0
		}
		return raw[:start] + "xxxxx" + raw[at:]
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
		return u.String()
	}
	return raw
}

// serviceURL returns the explicit URL when set, else the one derived from
// base: the same URL with port 8081 replaced by port, any other port kept.
func serviceURL(what, explicit string, base *url.URL, port string) (string, error) {
	if explicit != "" {
		u, err := parseBaseURL(what, explicit)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(u.String(), "/"), nil
	}
	d := *base
	if base.Port() == "8081" {
		d.Host = net.JoinHostPort(base.Hostname(), port)
	}
	return strings.TrimRight(d.String(), "/"), nil
}

// FromEnv returns a Client configured from AGENTTRUST_URL (or
// AGENTTRUST_BASE_URL), AGENTTRUST_AUTH_URL, AGENTTRUST_AUDIT_URL and
// AGENTTRUST_API_KEY; empty variables count as unset. opts are applied after
// the environment and win over it.
func FromEnv(opts ...Option) (*Client, error) {
	env := func(k string) string { return os.Getenv(k) }
	base := env("AGENTTRUST_URL")
	if base == "" {
		base = env("AGENTTRUST_BASE_URL")
	}
	pre := []Option{
		WithBaseURL(base),
		WithAuthURL(env("AGENTTRUST_AUTH_URL")),
		WithAuditURL(env("AGENTTRUST_AUDIT_URL")),
		WithAPIKey(env("AGENTTRUST_API_KEY")),
	}
	return New(append(pre, opts...)...)
}

// FromConfig returns a Client configured from a JSON file with the keys
// base_url, auth_url, audit_url, api_key, timeout (seconds, > 0) and
// verify_tls; unknown keys are ignored. opts are applied after the file and
// win over it. A missing or malformed file is a *ValidationError.
func FromConfig(path string, opts ...Option) (*Client, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, configErr(fmt.Errorf("config file: %w", err))
	}
	var f struct {
		BaseURL   *string  `json:"base_url"`
		AuthURL   *string  `json:"auth_url"`
		AuditURL  *string  `json:"audit_url"`
		APIKey    *string  `json:"api_key"`
		Timeout   *float64 `json:"timeout"`
		VerifyTLS *bool    `json:"verify_tls"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, configErr(fmt.Errorf("config file %s: %v", path, err))
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, configErr(fmt.Errorf("config file %s: top level must be a JSON object", path))
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	pre := []Option{
		WithBaseURL(str(f.BaseURL)),
		WithAuthURL(str(f.AuthURL)),
		WithAuditURL(str(f.AuditURL)),
		WithAPIKey(str(f.APIKey)),
	}
	if f.Timeout != nil {
		secs := *f.Timeout
		if !(secs > 0) || secs > float64(1<<62)/float64(time.Second) {
			return nil, configErr(fmt.Errorf("config file %s: timeout must be a positive number of seconds", path))
		}
		pre = append(pre, WithTimeout(time.Duration(secs*float64(time.Second))))
	}
	if f.VerifyTLS != nil && !*f.VerifyTLS {
		pre = append(pre, WithInsecureSkipVerify())
	}
	return New(append(pre, opts...)...)
}

// BaseURL returns the gateway URL, without trailing slashes.
func (c *Client) BaseURL() string { return c.baseURL }

// AuthURL returns the auth service URL (tokens and action checks).
func (c *Client) AuthURL() string { return c.authURL }

// AuditURL returns the audit service URL (telemetry).
func (c *Client) AuditURL() string { return c.auditURL }

// SetAPIKey replaces the API key for every service and clears the token
// cache, since cached tokens were issued under the old key. It is safe to
// call while requests are in flight; each request uses one key throughout.
// A key with a control character cannot be sent: each call then fails with
// a *ValidationError, before any I/O, until a valid key is set.
func (c *Client) SetAPIKey(key string) {
	c.apiKey.Store(&key)
	c.tokens.clear()
}

// Close releases the Client's idle connections and the goroutines that
// serve them. Calls in flight are not interrupted: their connections are
// closed as they return. The Client stays usable, but from now on keeps no
// connection open once a call returns, so a late call cannot leak one.
// Close is idempotent, safe for concurrent use, and always returns nil
// (the result is there for io.Closer).
//
// A transport passed in with WithHTTPClient belongs to the caller, who
// releases it; Close leaves it alone.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.closeIdle()
	if c.gate != nil {
		c.gate.Close()
	}
	return nil
}

// closeIdle closes the idle connections of the Client's own transport.
func (c *Client) closeIdle() {
	if c.idle != nil {
		c.idle()
	}
}

// String describes the Client without its API key or the user info of its
// URLs.
func (c *Client) String() string {
	key := "none"
	if *c.apiKey.Load() != "" {
		key = "set"
	}
	return "agenttrust.Client{base: " + redactURL(c.baseURL) + ", auth: " + redactURL(c.authURL) +
		", audit: " + redactURL(c.auditURL) + ", api key: " + key + "}"
}

// GoString is String, so that %#v does not print the API key either.
func (c *Client) GoString() string { return c.String() }

// Format makes every fmt verb print String, so no verb can reveal the API key.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue logs String, so that log/slog shows neither the API key nor the
// services' internals.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Health returns the gateway's health document, uninterpreted.
func (c *Client) Health(ctx context.Context, opts ...RequestOption) (map[string]any, error) {
	return callRaw(ctx, c, &request{method: http.MethodGet, base: baseGateway, path: "/health", idempotent: true}, opts)
}
