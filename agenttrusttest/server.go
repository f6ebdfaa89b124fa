package agenttrusttest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// DefaultOrgID is the organization of the API key created at start.
const DefaultOrgID = "org-default"

// maxBodyBytes bounds request bodies; larger ones are answered with 413.
const maxBodyBytes = 8 << 20

type config struct {
	split     bool
	addr      string
	authAddr  string
	auditAddr string
	clock     func() time.Time
	policy    Policy
	apiKey    string
	logMax    int
	logBytes  int
	timeouts  Timeouts
	secure    SecuritySettings
}

// Option configures a Server created by NewServer.
type Option func(*config)

// WithSplitListeners serves the gateway, auth and audit APIs on three
// listeners, so that a client sending a request to the wrong base URL gets
// a 404. Health is served on all three.
func WithSplitListeners() Option { return func(c *config) { c.split = true } }

// WithAddr sets the gateway listener address (default "127.0.0.1:0"). With
// split listeners the auth and audit listeners use the same host and an
// ephemeral port, unless WithSplitAddrs sets them.
func WithAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// WithSplitAddrs sets the listener addresses of the auth and audit APIs
// with split listeners (and implies WithSplitListeners). An empty address
// keeps the default: the gateway's host with an ephemeral port. For the
// "direct services" layout that the SDKs derive from a base URL on port
// 8081, use WithAddr("127.0.0.1:8081") and
// WithSplitAddrs("127.0.0.1:8082", "127.0.0.1:8084").
func WithSplitAddrs(auth, audit string) Option {
	return func(c *config) { c.split, c.authAddr, c.auditAddr = true, auth, audit }
}

// Defaults of the request log (see Server.Requests).
const (
	DefaultRequestLogSize  = 10000
	DefaultRequestLogBytes = 64 << 20
)

// WithRequestLogLimit bounds the request log: it keeps the most recent
// requests, at most maxRequests of them and at most maxBodyBytes of request
// bodies in total, dropping the oldest first. A value of 0 or less keeps the
// default (DefaultRequestLogSize, DefaultRequestLogBytes).
func WithRequestLogLimit(maxRequests, maxBodyBytes int) Option {
	return func(c *config) { c.logMax, c.logBytes = maxRequests, maxBodyBytes }
}

// Timeouts are the listeners' connection timeouts, as in net/http.Server.
// A zero field keeps the default of DefaultTimeouts.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included: a client that
	// sends its body too slowly is cut off.
	Read time.Duration
	// Idle bounds how long a keep-alive connection waits for the next
	// request.
	Idle time.Duration
}

// DefaultTimeouts are the listeners' timeouts unless WithTimeouts changes
// them. There is no write timeout: injected latency may hold an answer for
// as long as a test wants.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Idle: 2 * time.Minute}

// WithTimeouts sets the listeners' connection timeouts; zero fields keep
// their defaults.
func WithTimeouts(t Timeouts) Option { return func(c *config) { c.timeouts = t } }

// WithClock sets the initial server clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithPolicy sets the initial action-check policy.
func WithPolicy(p Policy) Option { return func(c *config) { c.policy = p.clone() } }

// WithAPIKey sets the API key created at start instead of a random
// "sk_test_" key, e.g. for a dev server shared with other processes.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// Server is a running fake gateway. All methods are safe for concurrent use.
type Server struct {
	gwURL, authURL, auditURL string
	apiKey                   string

	router    router
	https     []*http.Server
	transport *http.Transport // outbound calls: MCP proxy and SIEM test
	outbound  *http.Client
	cardKey   ed25519.PrivateKey

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc

	lifeMu sync.Mutex
	closed bool
	wg     sync.WaitGroup // serve loops and in-flight handlers

	reqSeq atomic.Int64

	timeouts         Timeouts
	logMax, logBytes int // request log bounds

	clockMu sync.RWMutex
	clock   func() time.Time
	offset  time.Duration

	mu sync.Mutex // guards everything below
	st state
}

// NewServer starts a fake gateway listening on loopback. Call Close to stop it.
func NewServer(opts ...Option) (*Server, error) {
	cfg := config{addr: "127.0.0.1:0", clock: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = time.Now
	}
	if cfg.apiKey == "" {
		cfg.apiKey = "sk_test_" + randomHex(16)
	}
	if cfg.logMax <= 0 {
		cfg.logMax = DefaultRequestLogSize
	}
	if cfg.logBytes <= 0 {
		cfg.logBytes = DefaultRequestLogBytes
	}
	for _, d := range []struct{ v, def *time.Duration }{
		{&cfg.timeouts.ReadHeader, &DefaultTimeouts.ReadHeader},
		{&cfg.timeouts.Read, &DefaultTimeouts.Read},
		{&cfg.timeouts.Idle, &DefaultTimeouts.Idle},
	} {
		if *d.v <= 0 {
			*d.v = *d.def
		}
	}
	_, cardKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("agenttrusttest: generate key: %w", err)
	}
	s := &Server{
		apiKey:   cfg.apiKey,
		clock:    cfg.clock,
		timeouts: cfg.timeouts,
		logMax:   cfg.logMax,
		logBytes: cfg.logBytes,
		cardKey:  cardKey,
		st:       newState(cfg.policy),
	}
	s.st.apiKeys[cfg.apiKey] = DefaultOrgID
	s.st.identity.settings = cfg.secure
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.transport = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
	}
	s.outbound = &http.Client{
		Transport:     s.transport,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s.routes()

	gw, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("agenttrusttest: listen on %s: %w", cfg.addr, err)
	}
	s.gwURL = "http://" + gw.Addr().String()
	s.authURL, s.auditURL = s.gwURL, s.gwURL
	if !cfg.split {
		s.serve(gw, apiAll)
		return s, nil
	}
	host, _, _ := net.SplitHostPort(gw.Addr().String())
	if cfg.authAddr == "" {
		cfg.authAddr = net.JoinHostPort(host, "0")
	}
	if cfg.auditAddr == "" {
		cfg.auditAddr = net.JoinHostPort(host, "0")
	}
	auth, err := net.Listen("tcp", cfg.authAddr)
	if err != nil {
		gw.Close()
		return nil, fmt.Errorf("agenttrusttest: listen on %s: %w", cfg.authAddr, err)
	}
	audit, err := net.Listen("tcp", cfg.auditAddr)
	if err != nil {
		gw.Close()
		auth.Close()
		return nil, fmt.Errorf("agenttrusttest: listen on %s: %w", cfg.auditAddr, err)
	}
	s.authURL = "http://" + auth.Addr().String()
	s.auditURL = "http://" + audit.Addr().String()
	s.serve(gw, apiGateway)
	s.serve(auth, apiAuth)
	s.serve(audit, apiAudit)
	return s, nil
}

// NewTestServer starts a Server for a test, failing the test on error and
// closing the server when the test ends.
func NewTestServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := NewServer(opts...)
	if err != nil {
		tb.Fatalf("agenttrusttest: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) serve(ln net.Listener, served api) {
	hs := &http.Server{
		Handler:           s.handler(served),
		ReadHeaderTimeout: s.timeouts.ReadHeader,
		ReadTimeout:       s.timeouts.Read,
		IdleTimeout:       s.timeouts.Idle,
	}
	s.https = append(s.https, hs)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = hs.Serve(ln)
	}()
}

// Close stops the listeners, aborts requests in flight (including injected
// latency and outbound proxy calls) and waits for them. It is idempotent.
func (s *Server) Close() {
	s.lifeMu.Lock()
	if s.closed {
		s.lifeMu.Unlock()
		return
	}
	s.closed = true
	s.lifeMu.Unlock()

	s.cancel()
	for _, hs := range s.https {
		_ = hs.Close()
	}
	s.wg.Wait()
	s.transport.CloseIdleConnections()
}

// URL is the gateway base URL, e.g. http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.gwURL }

// AuthURL is the auth base URL (tokens and action checks); it equals URL
// unless the server was started WithSplitListeners.
func (s *Server) AuthURL() string { return s.authURL }

// AuditURL is the audit base URL (telemetry); it equals URL unless the
// server was started WithSplitListeners.
func (s *Server) AuditURL() string { return s.auditURL }

// APIKey is the key created at start; it belongs to DefaultOrgID.
func (s *Server) APIKey() string { return s.apiKey }

// OrgID is the organization of APIKey.
func (s *Server) OrgID() string { return DefaultOrgID }

// AddAPIKey creates a new API key for orgID and returns it.
func (s *Server) AddAPIKey(orgID string) string {
	key := "sk_test_" + randomHex(16)
	s.mu.Lock()
	s.st.apiKeys[key] = orgID
	s.mu.Unlock()
	return key
}

// Now is the server clock: the clock function plus every Advance since the
// last SetClock.
func (s *Server) Now() time.Time {
	s.clockMu.RLock()
	defer s.clockMu.RUnlock()
	return s.clock().Add(s.offset)
}

// SetClock replaces the clock function (nil restores time.Now) and resets
// the offset accumulated by Advance.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.clockMu.Lock()
	s.clock, s.offset = now, 0
	s.clockMu.Unlock()
}

// Advance moves the server clock forward by d.
func (s *Server) Advance(d time.Duration) {
	s.clockMu.Lock()
	s.offset += d
	s.clockMu.Unlock()
}

// enter registers an in-flight handler unless the server is closing.
func (s *Server) enter() bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// call is one request being handled.
type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context // request context, also cancelled by Close
	params map[string]string
	body   []byte
	org    string // organization of the API key ("" on public routes)
	base   string // URL of the listener that received the request
}

func (c *call) param(name string) string { return c.params[name] }

// validator is a request body with rules beyond the types of its keys;
// validate returns the message of a 400, or "" when the body is fine.
type validator interface {
	validate() string
}

// decode strictly decodes the body into dst and then applies dst's own
// rules when it is a validator; on failure it answers 400 and returns false.
func (c *call) decode(dst any) bool {
	if err := decodeStrict(c.body, dst); err != nil {
		c.fail(http.StatusBadRequest, err.Error())
		return false
	}
	if v, ok := dst.(validator); ok {
		if msg := v.validate(); msg != "" {
			c.fail(http.StatusBadRequest, msg)
			return false
		}
	}
	return true
}

// withBody adapts a handler that takes a strict request body of type T:
// the body is validated and decoded first, and a bad one is answered 400
// naming the offending key without h running.
func withBody[T any](h func(*call, T)) func(*call) {
	return func(c *call) {
		var req T
		if c.decode(&req) {
			h(c, req)
		}
	}
}

// positiveSecondsErr is the validation message for a lifetime n sent under
// the body key key that is not a positive number of seconds, or "".
func positiveSecondsErr(key string, n int64) string {
	if n <= 0 {
		return fmt.Sprintf("key %q must be a positive number of seconds", key)
	}
	return ""
}

func (c *call) reply(status int, v any) { writeJSON(c.w, status, v) }

func (c *call) fail(status int, msg string) { writeJSON(c.w, status, map[string]string{"error": msg}) }

func (c *call) noContent() { c.w.WriteHeader(http.StatusNoContent) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error": "encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) handler(served api) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqID := fmt.Sprintf("req-%d", s.reqSeq.Add(1))
		w.Header().Set("X-Request-ID", reqID)
		if !s.enter() {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "server closing"})
			return
		}
		defer s.wg.Done()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()

		c := &call{s: s, w: w, r: r, ctx: ctx, base: s.listenerURL(served)}
		// The route and the API key are checked before the body is read:
		// a request that is refused anyway costs no body reading and
		// leaves no body in the request log.
		rt, params, allowed := s.router.match(served, r.Method, r.URL.EscapedPath())
		if rt == nil {
			s.record(r, nil, served, reqID)
			if allowed != nil {
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				c.fail(http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
				return
			}
			c.fail(http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.EscapedPath())
			return
		}
		c.params = params
		org, authed := "", rt.public
		if !rt.public {
			org, authed = s.orgForKey(r.Header.Get("X-API-Key"))
		}
		if !authed {
			s.record(r, nil, served, reqID)
			// Faults apply before authentication.
			if s.applyFault(c, rt.key()) {
				return
			}
			c.fail(http.StatusUnauthorized, "missing or invalid X-API-Key")
			return
		}
		c.org = org

		// A bodiless route needs one byte to refuse a body; public routes
		// are all bodiless, so no unauthenticated body is read in full.
		limit := int64(maxBodyBytes + 1)
		if rt.bodiless {
			limit = 1
		}
		body, readErr := io.ReadAll(io.LimitReader(r.Body, limit))
		if len(body) > maxBodyBytes {
			s.record(r, nil, served, reqID)
		} else {
			s.record(r, body, served, reqID)
		}
		c.body = body
		if s.applyFault(c, rt.key()) {
			return
		}
		switch {
		case readErr != nil:
			c.fail(http.StatusBadRequest, "read body: "+readErr.Error())
			return
		case len(body) > maxBodyBytes:
			c.fail(http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		if msg := s.misplacedCredentials(rt, r); msg != "" {
			c.fail(http.StatusBadRequest, msg)
			return
		}
		if msg := checkQuery(rt, r); msg != "" {
			c.fail(http.StatusBadRequest, msg)
			return
		}
		if len(body) > 0 {
			if rt.bodiless {
				c.fail(http.StatusBadRequest, "this endpoint takes no request body")
				return
			}
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
				c.fail(http.StatusUnsupportedMediaType, "Content-Type must be application/json")
				return
			}
		}
		rt.h(c)
	})
}

func checkQuery(rt *route, r *http.Request) string {
	q, err := parseQuery(r.URL.RawQuery)
	if err != "" {
		return err
	}
	for k, vs := range q {
		ok := false
		for _, a := range rt.query {
			ok = ok || a == k
		}
		if !ok {
			return fmt.Sprintf("unknown query parameter %q", k)
		}
		if len(vs) != 1 || vs[0] == "" {
			return fmt.Sprintf("query parameter %q must be given once and not be empty", k)
		}
	}
	return ""
}

func parseQuery(raw string) (url.Values, string) {
	if raw == "" {
		return nil, ""
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, "malformed query string"
	}
	return q, ""
}

func (s *Server) orgForKey(key string) (string, bool) {
	if key == "" {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	org, ok := s.st.apiKeys[key]
	return org, ok
}

func (s *Server) routes() {
	add := func(method, pattern string, a api, h func(*call), mods ...func(*route)) {
		rt := &route{method: method, pattern: pattern, api: a, h: h}
		for _, m := range mods {
			m(rt)
		}
		s.router.add(rt)
	}
	public := func(rt *route) { rt.public = true }
	bodiless := func(rt *route) { rt.bodiless = true }
	query := func(keys ...string) func(*route) { return func(rt *route) { rt.query = keys } }
	gw := apiGateway

	add("GET", "/health", apiAll, s.health, public)

	add("POST", "/api/v1/agents", gw, withBody(s.createAgent))
	add("GET", "/api/v1/agents", gw, s.listAgents, query("org_id"))
	add("GET", "/api/v1/agents/{agent_id}", gw, s.getAgent)
	add("POST", "/api/v1/agents/{agent_id}/revoke", gw, withBody(s.revokeAgent))
	add("POST", "/api/v1/agents/{agent_id}/challenge", gw, s.challenge, bodiless)
	add("POST", "/api/v1/wimse/token", gw, withBody(s.issueWIMSEToken))
	add("POST", "/api/v1/wimse/verify", gw, withBody(s.verifyWIMSEToken))
	add("GET", "/api/v1/orgs/security-settings", gw, s.getSecuritySettings)
	add("PUT", "/api/v1/orgs/security-settings", gw, withBody(s.putSecuritySettings))

	add("POST", "/api/v1/agent-tokens/issue", apiAuth, withBody(s.issueToken))
	add("POST", "/api/v1/agent-tokens/introspect", apiAuth, withBody(s.introspectToken))
	add("POST", "/api/v1/agent-tokens/revoke", apiAuth, withBody(s.revokeToken))
	add("POST", "/api/v1/agenttrust/check", apiAuth, withBody(s.check))

	add("POST", "/api/v1/telemetry/report", apiAudit, withBody(s.report))

	add("POST", "/mcp/sessions/init", gw, withBody(s.initMCPSession))
	add("GET", "/mcp/sessions/{session_id}", gw, s.getSession)
	add("POST", "/api/v1/agenttrust/api-sessions/init", gw, withBody(s.initAPISession))

	add("GET", "/mcp/approvals/{approval_id}", gw, s.getApproval)
	add("POST", "/mcp/approvals/{approval_id}/approve", gw, withBody(s.approve))
	add("POST", "/mcp/approvals/{approval_id}/deny", gw, withBody(s.deny))

	add("POST", "/api/v1/agents/{agent_id}/card", gw, s.generateCard, bodiless)
	add("GET", "/api/v1/agents/{agent_id}/card", gw, s.getCard)
	add("PUT", "/api/v1/agents/{agent_id}/card/publish", gw, s.publishCard, bodiless)
	add("GET", "/a2a/agents/{agent_id}/agent.json", gw, s.getPublicCard, public)

	add("POST", "/a2a", gw, withBody(s.a2a))
	add("POST", "/a2a/agents/{agent_id}", gw, withBody(s.a2aAgent))

	add("POST", "/mcp/servers", gw, withBody(s.registerMCPServer))
	add("GET", "/mcp/servers", gw, s.listMCPServers)
	add("DELETE", "/mcp/servers/{server_id}", gw, deleter(s, &s.st.mcpServers, "server_id", "mcp server not found"))
	add("POST", "/mcp/{server_id}", gw, withBody(s.callMCP))

	add("POST", "/api/v1/delegations", gw, withBody(s.createDelegation))
	add("GET", "/api/v1/delegations", gw, s.listDelegations)
	add("DELETE", "/api/v1/delegations/{delegation_id}", gw, s.revokeDelegation)
	add("POST", "/api/v1/delegations/{delegation_id}/session", gw, s.delegationSession, bodiless)

	add("POST", "/api/v1/federation/providers", gw, withBody(s.registerProvider))
	add("GET", "/api/v1/federation/providers", gw, s.listProviders)
	add("DELETE", "/api/v1/federation/providers/{provider_id}", gw, deleter(s, &s.st.providers, "provider_id", "provider not found"))
	add("POST", "/api/v1/federation/tokens/introspect", gw, withBody(s.federationIntrospect))
	add("POST", "/api/v1/federation/tokens/verify", gw, withBody(s.federationVerify))
	add("POST", "/api/v1/federation/sessions/init", gw, withBody(s.federationSession))
	add("POST", "/api/v1/federation/tokens/issue", gw, withBody(s.issueIDToken))

	add("POST", "/api/v1/siem/destinations", gw, withBody(s.createSIEM))
	add("GET", "/api/v1/siem/destinations", gw, s.listSIEM)
	add("GET", "/api/v1/siem/destinations/{destination_id}", gw, s.getSIEM)
	add("PUT", "/api/v1/siem/destinations/{destination_id}", gw, s.updateSIEM)
	add("DELETE", "/api/v1/siem/destinations/{destination_id}", gw, deleter(s, &s.st.siem, "destination_id", "destination not found"))
	add("GET", "/api/v1/siem/destinations/{destination_id}/logs", gw, s.siemLogs)
	add("POST", "/api/v1/siem/destinations/{destination_id}/test", gw, s.testSIEM, bodiless)
}

func (s *Server) health(c *call) { c.reply(http.StatusOK, map[string]string{"status": "ok"}) }

// ts is a timestamp on the wire: RFC 3339 in UTC with whole seconds (a form
// every client parser accepts), or null when zero.
type ts time.Time

func (t ts) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(strconv.Quote(formatTime(time.Time(t)))), nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("agenttrusttest: crypto/rand failed: " + err.Error()))
	}
	return hex.EncodeToString(b)
}
