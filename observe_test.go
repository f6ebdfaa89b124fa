package agenttrust_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
)

func octx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustPort(t *testing.T, s string) int {
	t.Helper()
	p, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder is an Observer that records every hook call, in order.
type recorder struct {
	mu       sync.Mutex
	events   []string // one line per hook call
	requests []agenttrust.RequestInfo
	attempts []agenttrust.AttemptResult
	results  []agenttrust.RequestResult
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

func (r *recorder) observer() *agenttrust.Observer {
	return &agenttrust.Observer{
		RequestStart: func(ctx context.Context, req agenttrust.RequestInfo) context.Context {
			r.mu.Lock()
			r.requests = append(r.requests, req)
			r.mu.Unlock()
			r.add("start " + req.Operation)
			return context.WithValue(ctx, recKey{}, req.Operation)
		},
		AttemptStart: func(ctx context.Context, req agenttrust.RequestInfo, n int, h http.Header) {
			r.check(ctx, req)
			r.add("attempt " + strconv.Itoa(n))
			r.mu.Lock()
			for k, v := range r.header {
				h.Set(k, v+"-"+strconv.Itoa(n))
			}
			r.mu.Unlock()
		},
		AttemptDone: func(ctx context.Context, req agenttrust.RequestInfo, a agenttrust.AttemptResult) {
			r.check(ctx, req)
			r.mu.Lock()
			r.attempts = append(r.attempts, a)
			r.mu.Unlock()
			r.add(fmt.Sprintf("attempt %d done %d %q", a.Attempt, a.Status, a.ErrorClass))
		},
		RequestDone: func(ctx context.Context, req agenttrust.RequestInfo, res agenttrust.RequestResult) {
			r.check(ctx, req)
			r.mu.Lock()
			r.results = append(r.results, res)
			r.mu.Unlock()
			r.add(fmt.Sprintf("done %s %d %q attempts=%d", req.Operation, res.Status, res.ErrorClass, res.Attempts))
		},
		CacheLookup: func(_ context.Context, kind agenttrust.CacheKind, hit bool) {
			r.mu.Lock()
			r.caches = append(r.caches, fmt.Sprintf("%s %v", kind, hit))
			r.mu.Unlock()
		},
	}
}

// check notes whether ctx is the one RequestStart returned for req.
func (r *recorder) check(ctx context.Context, req agenttrust.RequestInfo) {
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

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("hook calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestObserverRetriedCheck(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	srv.InjectFault("POST /api/v1/agenttrust/check", agenttrusttest.Fault{Status: 503, Times: 1})
	agentID := srv.CreateAgent("bot")
	rec := newRecorder()
	rec.header = map[string]string{"Traceparent": "00-trace", "X-Api-Key": "stolen", "Accept": "text/evil"}
	c := fakeClient(t, srv, agenttrust.WithObserver(rec.observer()))

	res, err := c.Actions.Check(octx(t), agenttrust.ActionCheckParams{AgentID: agentID, ToolName: "read_file"})
	if err != nil || !res.Allowed {
		t.Fatalf("Check = %+v, %v", res, err)
	}
	equalLines(t, rec.snapshot(), []string{
		"start actions.check",
		"attempt 1", `attempt 1 done 503 "503"`,
		"attempt 2", `attempt 2 done 200 ""`,
		`done actions.check 200 "" attempts=2`,
	})
	if !rec.ctxOK {
		t.Error("a hook did not get the context RequestStart returned")
	}
	u := mustURL(t, srv.AuthURL())
	want := agenttrust.RequestInfo{Operation: "actions.check", Method: "POST", URLTemplate: "/api/v1/agenttrust/check",
		Scheme: "http", ServerAddress: u.Hostname(), ServerPort: mustPort(t, u.Port())}
	if rec.requests[0] != want {
		t.Errorf("RequestInfo = %+v, want %+v", rec.requests[0], want)
	}
	// Each attempt carries the header its AttemptStart added; the hook
	// cannot replace the API key or the SDK's own headers.
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if got, want := r.Header.Get("Traceparent"), "00-trace-"+strconv.Itoa(i+1); got != want {
			t.Errorf("attempt %d: traceparent %q, want %q", i+1, got, want)
		}
		if got := r.Header.Get("X-Api-Key"); got != srv.APIKey() {
			t.Errorf("attempt %d: X-API-Key %q replaced by the observer", i+1, got)
		}
		if got := r.Header.Get("Accept"); got != "application/json" {
			t.Errorf("attempt %d: Accept %q replaced by the observer", i+1, got)
		}
	}
	if d := rec.results[0].Duration; d <= 0 || d < rec.attempts[0].Duration+rec.attempts[1].Duration {
		t.Errorf("request duration %v, attempts %v and %v", d, rec.attempts[0].Duration, rec.attempts[1].Duration)
	}
}

// TestObserverNoIDs checks that ids in the path, the API key, tokens and
// URL passwords never reach a hook: only the URL template does.
func TestObserverNoIDs(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	agentID := srv.CreateAgent("secretive", "read")
	rec := newRecorder()
	u := mustURL(t, srv.URL())
	withUser := "http://user:hunter2pass@" + u.Host
	c := fakeClient(t, srv, agenttrust.WithBaseURL(withUser), agenttrust.WithAuthURL(withUser), agenttrust.WithAuditURL(withUser),
		agenttrust.WithObserver(rec.observer()))
	ctx := octx(t)
	if _, err := c.Agents.Get(ctx, agentID); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Tokens.Issue(ctx, agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Tokens.Introspect(ctx, agenttrust.TokenIntrospectParams{Token: tok.Token}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Agents.Get(ctx, "no such/agent"); err == nil {
		t.Fatal("Get of an unknown agent succeeded")
	}
	if got := rec.requests[0].URLTemplate; got != "/api/v1/agents/{agent_id}" {
		t.Errorf("URL template %q", got)
	}
	if got := rec.requests[3].URLTemplate; got != "/api/v1/agents/{agent_id}" {
		t.Errorf("URL template of an escaped id %q", got)
	}
	dump := fmt.Sprintf("%+v %+v %+v %+v %v", rec.requests, rec.attempts, rec.results, rec.caches, rec.snapshot())
	for _, secret := range []string{agentID, "no such", "no%20such", srv.APIKey(), tok.Token, "hunter2pass", "user:"} {
		if strings.Contains(dump, secret) {
			t.Errorf("hook arguments contain %q:\n%s", secret, dump)
		}
	}
	if !strings.Contains(dump, `done agents.get 404 "404"`) {
		t.Errorf("no 404 recorded:\n%s", dump)
	}
}

func TestObserverRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rec := newRecorder()
	c, err := agenttrust.New(agenttrust.WithBaseURL("http://"+addr), agenttrust.WithObserver(rec.observer()),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{MaxRetries: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Health(octx(t))
	if !errors.Is(err, agenttrust.ErrNetwork) {
		t.Fatalf("Health = %v", err)
	}
	equalLines(t, rec.snapshot(), []string{
		"start client.health",
		"attempt 1", `attempt 1 done 0 "network"`,
		"attempt 2", `attempt 2 done 0 "network"`,
		`done client.health 0 "network" attempts=2`,
	})
	if !errors.Is(rec.results[0].Err, agenttrust.ErrNetwork) {
		t.Errorf("RequestResult.Err = %v", rec.results[0].Err)
	}
}

func TestObserverTimeout(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	srv.InjectFault("GET /health", agenttrusttest.Fault{Latency: time.Minute})
	rec := newRecorder()
	c := fakeClient(t, srv, agenttrust.WithObserver(rec.observer()), agenttrust.WithTimeout(50*time.Millisecond))
	if _, err := c.Health(octx(t)); err == nil {
		t.Fatal("Health succeeded")
	}
	lines := rec.snapshot()
	if got, want := lines[len(lines)-1], `done client.health 0 "timeout" attempts=1`; got != want {
		t.Errorf("last hook %q, want %q (all: %q)", got, want, lines)
	}
}

func TestObserverTokenCache(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	agentID := srv.CreateAgent("cache", "read")
	rec := newRecorder()
	c := fakeClient(t, srv, agenttrust.WithObserver(rec.observer()))
	ctx := octx(t)
	p := agenttrust.TokenIssueParams{AgentID: agentID, Scopes: []string{"read"}}
	for i := 0; i < 2; i++ {
		if _, err := c.Tokens.Issue(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	p.NoCache = true
	if _, err := c.Tokens.Issue(ctx, p); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := strings.Join(rec.caches, ","); got != "token false,token true" {
		t.Errorf("cache lookups %q, want a miss then a hit (none for NoCache)", got)
	}
	if n := len(rec.results); n != 2 {
		t.Errorf("%d requests observed, want 2 (miss and NoCache)", n)
	}
}

func TestWithObserverNilOrEmpty(t *testing.T) {
	for _, o := range []*agenttrust.Observer{nil, {}} {
		c, err := agenttrust.New(agenttrust.WithObserver(o))
		if err != nil {
			t.Fatal(err)
		}
		if c.Observer() != nil {
			t.Errorf("WithObserver(%v) installed an observer", o)
		}
	}
	// The hooks are copied: changing the caller's struct later changes nothing.
	var calls int
	o := &agenttrust.Observer{CacheLookup: func(context.Context, agenttrust.CacheKind, bool) { calls++ }}
	c, err := agenttrust.New(agenttrust.WithObserver(o))
	if err != nil {
		t.Fatal(err)
	}
	o.CacheLookup = nil
	if got := c.Observer(); got == nil || got.CacheLookup == nil {
		t.Fatal("Observer() lost the installed hook")
	}
}

func TestErrorClass(t *testing.T) {
	srv := agenttrusttest.NewTestServer(t)
	c := fakeClient(t, srv, agenttrust.WithAPIKey("wrong-key-123"))
	_, authErr := c.Health(octx(t)) // public: succeeds; use a private endpoint
	if authErr != nil {
		t.Fatal(authErr)
	}
	_, authErr = c.Agents.Get(octx(t), "a1")
	_, valErr := c.Agents.Get(octx(t), "")
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{authErr, "401"},
		{valErr, "validation"},
		{agenttrust.NewError(agenttrust.CodeDecode, "Decode error: x", nil), "decode"},
		{agenttrust.NewError(agenttrust.CodeJSONRPC, "rpc", nil), "jsonrpc_error"},
		{agenttrust.NewError("SOMETHING_NEW", "x", nil), "_OTHER"},
		{agenttrust.NewError(agenttrust.CodeNetwork, "x", context.DeadlineExceeded), "timeout"},
		{agenttrust.NewError(agenttrust.CodeNetwork, "x", context.Canceled), "canceled"},
		{agenttrust.NewError(agenttrust.CodeNetwork, "x", errors.New("connection reset")), "network"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), "timeout"},
		{errors.New("anything"), "_OTHER"},
	}
	for _, tc := range cases {
		if got := agenttrust.ErrorClass(tc.err); got != tc.want {
			t.Errorf("ErrorClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
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
	obs := &agenttrust.Observer{
		AttemptDone: func(_ context.Context, req agenttrust.RequestInfo, _ agenttrust.AttemptResult) {
			mu.Lock()
			attempts[req.Operation+" "+req.URLTemplate]++
			mu.Unlock()
		},
	}
	c, err := agenttrust.New(agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAPIKey(srv.APIKey()), agenttrust.WithObserver(obs))
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
