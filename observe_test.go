package agenttrust

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

func mustPort(t *testing.T, s string) int {
	t.Helper()
	p, err := strconv.Atoi(s)
	require.NoError(t, err)
	return p
}

// recorder is an Observer that records every hook call, in order.
type recorder struct {
	mu       sync.Mutex
	events   []string // one line per hook call
	requests []RequestInfo
	attempts []AttemptResult
	results  []RequestResult
	caches   []string
	ctxOK    bool // every hook after RequestStart saw its context
	header   map[string]string
}

type recKey struct{}

func newRecorder() *recorder { return &recorder{ctxOK: true} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) observer() *Observer {
	return &Observer{
		RequestStart: func(ctx context.Context, req RequestInfo) context.Context {
			r.mu.Lock()
			r.requests = append(r.requests, req)
			r.mu.Unlock()
			r.add("start " + req.Operation)
			return context.WithValue(ctx, recKey{}, req.Operation)
		},
		AttemptStart: func(ctx context.Context, req RequestInfo, n int, h http.Header) {
			r.check(ctx, req)
			r.add("attempt " + strconv.Itoa(n))
			r.mu.Lock()
			for k, v := range r.header {
				h.Set(k, v+"-"+strconv.Itoa(n))
			}
			r.mu.Unlock()
		},
		AttemptDone: func(ctx context.Context, req RequestInfo, a AttemptResult) {
			r.check(ctx, req)
			r.mu.Lock()
			r.attempts = append(r.attempts, a)
			r.mu.Unlock()
			r.add(fmt.Sprintf("attempt %d done %d %q", a.Attempt, a.Status, a.ErrorClass))
		},
		RequestDone: func(ctx context.Context, req RequestInfo, res RequestResult) {
			r.check(ctx, req)
			r.mu.Lock()
			r.results = append(r.results, res)
			r.mu.Unlock()
			r.add(fmt.Sprintf("done %s %d %q attempts=%d", req.Operation, res.Status, res.ErrorClass, res.Attempts))
		},
		CacheLookup: func(_ context.Context, kind CacheKind, hit bool) {
			r.mu.Lock()
			r.caches = append(r.caches, fmt.Sprintf("%s %v", kind, hit))
			r.mu.Unlock()
		},
	}
}

// check notes whether ctx is the one RequestStart returned for req.
func (r *recorder) check(ctx context.Context, req RequestInfo) {
	if ctx.Value(recKey{}) != req.Operation {
		r.mu.Lock()
		r.ctxOK = false
		r.mu.Unlock()
	}
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func TestObserverRetriedCheck(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503, Times: 1})
	agentID := srv.CreateAgent("bot")
	rec := newRecorder()
	rec.header = map[string]string{"Traceparent": "00-trace", "X-Api-Key": "stolen", "Accept": "text/evil"}
	c := fakeClient(t, srv, WithObserver(rec.observer()))

	res, err := c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: agentID, ToolName: "read_file"})
	require.NoError(t, err, "Check = %+v", res)
	require.True(t, res.Allowed, "Check = %+v, %v", res, err)
	require.Equal(t, []string{
		"start actions.check",
		"attempt 1", `attempt 1 done 503 "503"`,
		"attempt 2", `attempt 2 done 200 ""`,
		`done actions.check 200 "" attempts=2`,
	}, rec.snapshot(), "hook calls")
	assert.True(t, rec.ctxOK, "a hook did not get the context RequestStart returned")
	u := mustURL(t, srv.AuthURL())
	want := RequestInfo{Operation: "actions.check", Method: "POST", URLTemplate: "/api/v1/agenttrust/check",
		Scheme: "http", ServerAddress: u.Hostname(), ServerPort: mustPort(t, u.Port())}
	assert.Equal(t, want, rec.requests[0], "RequestInfo")
	// Each attempt carries the header its AttemptStart added; the hook
	// cannot replace the API key or the SDK's own headers.
	reqs := srv.Requests()
	require.Len(t, reqs, 2, "%d requests, want 2", len(reqs))
	for i, r := range reqs {
		got, want := r.Header.Get("Traceparent"), "00-trace-"+strconv.Itoa(i+1)
		assert.Equal(t, want, got, "attempt %d: traceparent %q, want %q", i+1, got, want)
		got = r.Header.Get("X-Api-Key")
		assert.Equal(t, srv.APIKey(), got, "attempt %d: X-API-Key %q replaced by the observer", i+1, got)
		got = r.Header.Get("Accept")
		assert.Equal(t, "application/json", got, "attempt %d: Accept %q replaced by the observer", i+1, got)
	}
	d := rec.results[0].Duration
	assert.Greater(t, d, time.Duration(0), "request duration %v, attempts %v and %v", d, rec.attempts[0].Duration, rec.attempts[1].Duration)
	assert.GreaterOrEqual(t, d, rec.attempts[0].Duration+rec.attempts[1].Duration, "request duration %v, attempts %v and %v", d, rec.attempts[0].Duration, rec.attempts[1].Duration)
}

// TestObserverNoIDs checks that ids in the path, the API key, tokens and
// URL passwords never reach a hook: only the URL template does.
func TestObserverNoIDs(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	agentID := srv.CreateAgent("secretive", "read")
	rec := newRecorder()
	u := mustURL(t, srv.URL())
	withUser := "http://user:hunter2pass@" + u.Host
	c := fakeClient(t, srv, WithBaseURL(withUser), WithAuthURL(withUser), WithAuditURL(withUser),
		WithObserver(rec.observer()))
	ctx := ctxT(t)
	_, err := c.Agents.Get(ctx, agentID)
	require.NoError(t, err)
	tok, err := c.Tokens.Issue(ctx, TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}})
	require.NoError(t, err)
	_, err = c.Tokens.Introspect(ctx, TokenIntrospectParams{Token: tok.Token})
	require.NoError(t, err)
	_, err = c.Agents.Get(ctx, "no such/agent")
	require.Error(t, err, "Get of an unknown agent succeeded")
	got := rec.requests[0].URLTemplate
	assert.Equal(t, "/api/v1/agents/{agent_id}", got, "URL template %q", got)
	got = rec.requests[3].URLTemplate
	assert.Equal(t, "/api/v1/agents/{agent_id}", got, "URL template of an escaped id %q", got)
	dump := fmt.Sprintf("%+v %+v %+v %+v %v", rec.requests, rec.attempts, rec.results, rec.caches, rec.snapshot())
	for _, secret := range []string{agentID, "no such", "no%20such", srv.APIKey(), tok.Token, "hunter2pass", "user:"} {
		assert.NotContains(t, dump, secret, "hook arguments contain %q:\n%s", secret, dump)
	}
	assert.Contains(t, dump, `done agents.get 404 "404"`, "no 404 recorded:\n%s", dump)
}

func TestObserverRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	rec := newRecorder()
	c, err := New(WithBaseURL("http://"+addr), WithObserver(rec.observer()),
		WithRetryPolicy(RetryPolicy{MaxRetries: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	require.NoError(t, err)
	_, err = c.Health(ctxT(t))
	require.ErrorIs(t, err, ErrNetwork, "Health = %v", err)
	require.Equal(t, []string{
		"start client.health",
		"attempt 1", `attempt 1 done 0 "network"`,
		"attempt 2", `attempt 2 done 0 "network"`,
		`done client.health 0 "network" attempts=2`,
	}, rec.snapshot(), "hook calls")
	assert.ErrorIs(t, rec.results[0].Err, ErrNetwork, "RequestResult.Err = %v", rec.results[0].Err)
}

func TestObserverTimeout(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	srv.InjectFault("GET /health", agenttrusttest.Fault{Latency: time.Minute})
	rec := newRecorder()
	c := fakeClient(t, srv, WithObserver(rec.observer()), WithTimeout(50*time.Millisecond))
	_, err := c.Health(ctxT(t))
	require.Error(t, err, "Health succeeded")
	lines := rec.snapshot()
	got, want := lines[len(lines)-1], `done client.health 0 "timeout" attempts=1`
	assert.Equal(t, want, got, "last hook %q, want %q (all: %q)", got, want, lines)
}

func TestObserverTokenCache(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	agentID := srv.CreateAgent("cache", "read")
	rec := newRecorder()
	c := fakeClient(t, srv, WithObserver(rec.observer()))
	ctx := ctxT(t)
	p := TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}}
	for i := 0; i < 2; i++ {
		_, err := c.Tokens.Issue(ctx, p)
		require.NoError(t, err)
	}
	p.NoCache = true
	_, err := c.Tokens.Issue(ctx, p)
	require.NoError(t, err)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := strings.Join(rec.caches, ",")
	assert.Equal(t, "token false,token true", got, "cache lookups %q, want a miss then a hit (none for NoCache)", got)
	n := len(rec.results)
	assert.Equal(t, 2, n, "%d requests observed, want 2 (miss and NoCache)", n)
}

func TestWithObserverNilOrEmpty(t *testing.T) {
	for _, o := range []*Observer{nil, {}} {
		c, err := New(WithObserver(o))
		require.NoError(t, err)
		assert.Nil(t, c.Observer(), "WithObserver(%v) installed an observer", o)
	}
	// The hooks are copied: changing the caller's struct later changes nothing.
	var calls int
	o := &Observer{CacheLookup: func(context.Context, CacheKind, bool) { calls++ }}
	c, err := New(WithObserver(o))
	require.NoError(t, err)
	o.CacheLookup = nil
	got := c.Observer()
	require.NotNil(t, got, "Observer() lost the installed hook")
	require.NotNil(t, got.CacheLookup, "Observer() lost the installed hook")
}

func TestErrorClass(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv, WithAPIKey("wrong-key-123"))
	_, authErr := c.Health(ctxT(t)) // public: succeeds; use a private endpoint
	require.NoError(t, authErr)
	_, authErr = c.Agents.Get(ctxT(t), "a1")
	_, valErr := c.Agents.Get(ctxT(t), "")
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{authErr, "401"},
		{valErr, "validation"},
		{NewError(CodeDecode, "Decode error: x", nil), "decode"},
		{NewError(CodeJSONRPC, "rpc", nil), "jsonrpc_error"},
		{NewError("SOMETHING_NEW", "x", nil), "_OTHER"},
		{NewError(CodeNetwork, "x", context.DeadlineExceeded), "timeout"},
		{NewError(CodeNetwork, "x", context.Canceled), "canceled"},
		{NewError(CodeNetwork, "x", errors.New("connection reset")), "network"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "timeout"},
		{errors.New("anything"), "_OTHER"},
	}
	for _, tc := range cases {
		got := ErrorClass(tc.err)
		assert.Equal(t, tc.want, got, "ErrorClass(%v) = %q, want %q", tc.err, got, tc.want)
	}
}

// ExampleWithObserver counts the attempts of every API call.
func ExampleWithObserver() {
	srv, err := agenttrusttest.NewServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	var mu sync.Mutex
	attempts := map[string]int{}
	obs := &Observer{
		AttemptDone: func(_ context.Context, req RequestInfo, _ AttemptResult) {
			mu.Lock()
			attempts[req.Operation+" "+req.URLTemplate]++
			mu.Unlock()
		},
	}
	c, err := New(WithBaseURL(srv.URL()), WithAPIKey(srv.APIKey()), WithObserver(obs))
	if err != nil {
		panic(err)
	}
	agentID := srv.CreateAgent("example")
	if _, err := c.Agents.Get(context.Background(), agentID); err != nil {
		panic(err)
	}
	mu.Lock()
	fmt.Println(attempts)
	mu.Unlock()
	// Output: map[agents.get /api/v1/agents/{agent_id}:1]
}

// apiPath matches the string literals that are API paths or templates.
var apiPath = regexp.MustCompile(`^/(api|mcp|a2a|health)(/[A-Za-z0-9_.{}-]*)*$`)

// TestRouteTableCoversEveryPath reads the package's source: every API path
// literal must have a route, so that no call is reported as "request", and
// every route must be used.
func TestRouteTableCoversEveryPath(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	used := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "observe.go" {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		f, err := goparser.ParseFile(fset, name, src, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !apiPath.MatchString(s) {
				return true
			}
			used[s] = true
			return true
		})
	}
	require.GreaterOrEqual(t, len(used), 30, "found only %d API paths in the source; the scan is broken", len(used))
	known := map[string]bool{}
	for _, rt := range routes {
		known[rt.tmpl] = true
	}
	for p := range used {
		assert.True(t, known[p], "path %s is used in a request but has no route in observe.go", p)
	}
	for p := range known {
		assert.True(t, used[p], "route %s is not used by any request", p)
	}
}

func TestLookupRoute(t *testing.T) {
	cases := []struct{ method, path, op string }{
		{"POST", "/api/v1/agenttrust/check", "actions.check"},
		{"GET", "/api/v1/agents/a1", "agents.get"},
		{"GET", "/api/v1/agents/a%2F..%2Fb", "agents.get"},
		{"POST", "/api/v1/agents/a1/revoke", "agents.revoke"},
		{"POST", "/api/v1/agents/a1/card", "agent_cards.generate"},
		{"GET", "/api/v1/agents/a1/card", "agent_cards.get"},
		{"PUT", "/api/v1/agents/a1/card/publish", "agent_cards.publish"},
		{"POST", "/mcp/servers", "mcp.register_server"},
		{"POST", "/mcp/srv-1", "mcp.call_tool"},
		{"POST", "/mcp/sessions/init", "sessions.init_session"},
		{"GET", "/mcp/sessions/s1", "sessions.get_session"},
		{"POST", "/a2a", "a2a.task"},
		{"POST", "/a2a/agents/a1", "a2a.send_message"},
		{"GET", "/a2a/agents/a1/agent.json", "agent_cards.get_public"},
		{"GET", "/api/v1/siem/destinations/d1/logs", "streaming.delivery_log"},
		{"DELETE", "/api/v1/siem/destinations/d1", "streaming.delete"},
		// Unknown: another method, an empty id, extra or missing segments.
		{"DELETE", "/api/v1/agenttrust/check", ""},
		{"GET", "/api/v1/agents/", ""},
		{"GET", "/api/v1/agents/a1/extra", ""},
		{"POST", "/api/v1/agents/a1/revoke/x", ""},
		{"GET", "/nope", ""},
	}
	for _, tc := range cases {
		rt := lookupRoute(tc.method, tc.path)
		got := ""
		if rt != nil {
			got = rt.op
		}
		assert.Equal(t, tc.op, got, "lookupRoute(%s %s) = %q, want %q", tc.method, tc.path, got, tc.op)
	}
}

func TestDescribeUnknownRoute(t *testing.T) {
	c := newTestClient(t, "https://gw.example:8443/prefix", WithObserver(&Observer{RequestDone: func(_ context.Context, _ RequestInfo, _ RequestResult) {}}))
	info := c.obs.describe(&request{method: "GET", path: "/api/v1/unknown/secret-id"})
	want := RequestInfo{Operation: "request", Method: "GET", Scheme: "https", ServerAddress: "gw.example", ServerPort: 8443}
	assert.Equal(t, want, info, "describe")
	info = c.obs.describe(&request{method: "GET", base: baseGateway, path: "/api/v1/agents/secret-id"})
	assert.Equal(t, "/prefix/api/v1/agents/{agent_id}", info.URLTemplate, "URL template %q", info.URLTemplate)
	// The derived auth URL of an https gateway without a port.
	c = newTestClient(t, "https://gw.example", WithObserver(&Observer{RequestDone: func(_ context.Context, _ RequestInfo, _ RequestResult) {}}))
	got := c.obs.describe(&request{method: "POST", base: baseAuth, path: "/api/v1/agenttrust/check"})
	assert.Equal(t, 443, got.ServerPort, "https default port %d", got.ServerPort)
}

// TestObserverWithoutRequestHooks: hooks for other events leave requests on
// the unobserved path.
func TestObserverWithoutRequestHooks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{}`)) }))
	defer srv.Close()
	for _, tc := range []struct {
		obs      *Observer
		observed bool
	}{
		{&Observer{CacheLookup: func(context.Context, CacheKind, bool) {}}, false},
		{&Observer{CheckDone: func(context.Context, CheckInfo, CheckResult) {}}, false},
		{&Observer{AttemptDone: func(context.Context, RequestInfo, AttemptResult) {}}, true},
	} {
		c := newTestClient(t, srv.URL, WithObserver(tc.obs))
		r := &request{method: http.MethodGet, path: "/health", idempotent: true}
		_, err := c.do(ctxT(t), r, nil)
		require.NoError(t, err)
		got := r.observer != nil
		assert.Equal(t, tc.observed, got, "%+v: request observed %v, want %v", tc.obs, got, tc.observed)
	}
}

// With agent credentials and an Observer, every attempt of a check carries
// both the credentials (a fresh DPoP proof each time, verified by the fake)
// and the observer's traceparent; the observer cannot replace the token,
// the proof, the API key or a header the call was given.
func TestObserverWithAgentCredentials(t *testing.T) {
	var starts []int
	obs := &Observer{AttemptStart: func(_ context.Context, _ RequestInfo, n int, h http.Header) {
		starts = append(starts, n)
		h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333"+strconv.Itoa(n)+"-01")
		h.Set("Authorization", "Bearer observer-token")
		h.Set("DPoP", "observer-proof")
		h.Set("X-API-Key", "observer-key")
		h.Set("X-Tenant", "observer-tenant")
	}}
	e := newIdentityEnv(t, WithObserver(obs))
	e.srv.InjectFault(checkRoute, agenttrusttest.Fault{Status: 503, Times: 1})
	res, err := e.c.Actions.Check(ctxT(t), ActionCheckParams{AgentID: e.agent.ID, ToolName: "read_invoice"},
		WithRequestHeader("X-Tenant", "tenant-1"))
	require.NoError(t, err, "Check = %+v", res)
	require.True(t, res.Allowed, "Check = %+v, %v", res, err)
	rej := e.srv.IdentityRejections()
	require.Empty(t, rej, "the fake rejected the credentials: %+v", rej)
	checks := e.checkRequests()
	require.Len(t, checks, 2, "%d check requests, attempts observed %v", len(checks), starts)
	require.GreaterOrEqual(t, len(starts), 2, "%d check requests, attempts observed %v", len(checks), starts)
	require.Equal(t, 2, starts[len(starts)-1], "%d check requests, attempts observed %v", len(checks), starts)
	for i, r := range checks {
		a := strconv.Itoa(i + 1)
		got := r.Header.Get("Traceparent")
		assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333"+a+"-01", got, "attempt %s: traceparent %q", a, got)
		auth := r.Header.Values("Authorization")
		require.Len(t, auth, 1, "attempt %s: Authorization %q", a, auth)
		assert.NotEqual(t, "Bearer observer-token", auth[0], "attempt %s: Authorization %q", a, auth)
		dpop := r.Header.Values("DPoP")
		require.Len(t, dpop, 1, "attempt %s: DPoP %q", a, dpop)
		assert.NotEqual(t, "observer-proof", dpop[0], "attempt %s: DPoP %q", a, dpop)
		got = r.Header.Get("X-API-Key")
		assert.Equal(t, e.srv.APIKey(), got, "attempt %s: X-API-Key replaced", a)
		assert.Equal(t, []string{"tenant-1"}, r.Header.Values("X-Tenant"), "attempt %s: the call's header replaced", a)
	}
	assert.NotEqual(t, checks[1].Header.Get("DPoP"), checks[0].Header.Get("DPoP"), "the retry reused the proof")
}
