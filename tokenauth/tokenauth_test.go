package tokenauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
)

// secretToken is distinctive enough that finding it anywhere is a leak.
const secretToken = "at_SECRETtoken_0123456789abcdefXYZ"

// stubGateway serves the introspection endpoint on loopback, records the
// decoded bodies and answers with a replaceable function.
type stubGateway struct {
	*httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	bodies []map[string]any
	answer func(body map[string]any) (int, string)
}

func newStubGateway(t testing.TB, answer func(body map[string]any) (int, string)) *stubGateway {
	t.Helper()
	g := &stubGateway{answer: answer}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/agent-tokens/introspect" {
			http.Error(w, `{"error":"no route"}`, http.StatusNotFound)
			return
		}
		g.calls.Add(1)
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.bodies = append(g.bodies, body)
		answer := g.answer
		g.mu.Unlock()
		status, reply := answer(body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *stubGateway) lastBody(t *testing.T) map[string]any {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.bodies) == 0 {
		t.Fatal("the gateway received no introspection")
	}
	return g.bodies[len(g.bodies)-1]
}

// activeFor answers active with the given scopes, expiring in an hour of
// real time.
func activeFor(scopes ...string) func(map[string]any) (int, string) {
	return activeUntil(time.Now().Add(time.Hour), scopes...)
}

func activeUntil(exp time.Time, scopes ...string) func(map[string]any) (int, string) {
	return func(map[string]any) (int, string) {
		sc, _ := json.Marshal(scopes)
		return http.StatusOK, fmt.Sprintf(`{"active":true,"agent_id":"agent-1","org_id":"org-1","scopes":%s,"expires_at":%q}`,
			sc, exp.UTC().Format(time.RFC3339Nano))
	}
}

func inactive(reason string) func(map[string]any) (int, string) {
	return func(map[string]any) (int, string) {
		return http.StatusOK, fmt.Sprintf(`{"active":false,"reasoning":%q}`, reason)
	}
}

func newTestClient(t testing.TB, authURL string, opts ...agenttrust.Option) *agenttrust.Client {
	t.Helper()
	base := []agenttrust.Option{
		agenttrust.WithBaseURL(authURL), agenttrust.WithAuthURL(authURL),
		agenttrust.WithAPIKey("sk_test_middleware"),
		agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}),
		agenttrust.WithTimeout(5 * time.Second),
	}
	c, err := agenttrust.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// seen is what the protected handler observed.
type seen struct {
	mu    sync.Mutex
	calls int
	res   *agenttrust.IntrospectionResult
	ok    bool
}

func (s *seen) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := tokenauth.FromContext(r.Context())
		s.mu.Lock()
		s.calls++
		s.res, s.ok = res, ok
		s.mu.Unlock()
		_, _ = io.WriteString(w, "tool ran")
	})
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func serve(h http.Handler, authz ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/tools/call", strings.NewReader("{}"))
	for _, a := range authz {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// errorBody decodes the JSON error answer and checks it has exactly the two
// RFC 6750 keys.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", rec.Body.String(), err)
	}
	if len(m) != 2 || m["error"] == nil || m["error_description"] == nil {
		t.Errorf("error body keys = %v, want error and error_description", m)
	}
	return m
}

func assertNoLeak(t *testing.T, where, s string) {
	t.Helper()
	if strings.Contains(s, secretToken) || strings.Contains(s, "SECRETtoken") {
		t.Errorf("the token leaked into %s: %s", where, s)
	}
}

func TestRequireTokenAdmitsActiveToken(t *testing.T) {
	g := newStubGateway(t, activeFor("files:read", "files:write"))
	c := newTestClient(t, g.URL)
	var s seen
	h := tokenauth.RequireToken(c, tokenauth.WithTarget("files-service"), tokenauth.WithRequiredScopes("files:read"))(s.handler())

	rec := serve(h, "Bearer "+secretToken)
	if rec.Code != http.StatusOK || rec.Body.String() != "tool ran" {
		t.Fatalf("status %d body %q, want 200 from the handler", rec.Code, rec.Body.String())
	}
	if !s.ok || s.res == nil {
		t.Fatal("the handler found no introspection result in its context")
	}
	if s.res.AgentID != "agent-1" || s.res.OrgID != "org-1" || !s.res.Active ||
		!reflect.DeepEqual(s.res.Scopes, []string{"files:read", "files:write"}) {
		t.Errorf("handler saw %+v", s.res)
	}
	body := g.lastBody(t)
	want := map[string]any{"token": secretToken, "target": "files-service", "required_scopes": []any{"files:read"}}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("introspection body = %v, want %v", body, want)
	}
}

func TestRequireTokenSendsNullTargetAndEmptyScopes(t *testing.T) {
	g := newStubGateway(t, activeFor())
	c := newTestClient(t, g.URL)
	var s seen
	h := tokenauth.RequireToken(c)(s.handler())
	if rec := serve(h, "bearer "+secretToken); rec.Code != http.StatusOK {
		t.Fatalf("status %d, want 200 (the scheme is case-insensitive)", rec.Code)
	}
	body := g.lastBody(t)
	if v, ok := body["target"]; !ok || v != nil {
		t.Errorf("target = %v (present %v), want null", v, ok)
	}
	if v, ok := body["required_scopes"].([]any); !ok || len(v) != 0 {
		t.Errorf("required_scopes = %#v, want []", body["required_scopes"])
	}
}

func TestFromContextWithoutMiddleware(t *testing.T) {
	if r, ok := tokenauth.FromContext(context.Background()); ok || r != nil {
		t.Errorf("got %v %v from an empty context", r, ok)
	}
	want := &agenttrust.IntrospectionResult{Active: true, AgentID: "a"}
	ctx := tokenauth.NewContext(context.Background(), want)
	if r, ok := tokenauth.FromContext(ctx); !ok || r != want {
		t.Errorf("got %v %v, want the stored result", r, ok)
	}
}

func TestRequireTokenRejectsBadHeaders(t *testing.T) {
	g := newStubGateway(t, activeFor())
	c := newTestClient(t, g.URL)
	var s seen
	h := tokenauth.RequireToken(c, tokenauth.WithRealm("tools"))(s.handler())
	bare := `Bearer realm="tools"`
	cases := []struct {
		name      string
		authz     []string
		challenge string // exact, or a prefix ending in error="..."
		code      string
		status    int
	}{
		{"missing", nil, bare, "unauthorized", 401},
		{"empty", []string{""}, bare, "unauthorized", 401},
		{"other scheme", []string{"Basic dXNlcjpwYXNz"}, bare, "unauthorized", 401},
		// A malformed request is 400 invalid_request (RFC 6750 section 3.1).
		{"scheme only", []string{"Bearer"}, bare + `, error="invalid_request"`, "invalid_request", 400},
		{"scheme and space", []string{"Bearer   "}, bare + `, error="invalid_request"`, "invalid_request", 400},
		{"two parts", []string{"Bearer " + secretToken + " extra"}, bare + `, error="invalid_request"`, "invalid_request", 400},
		{"bad characters", []string{"Bearer at_a\"b"}, bare + `, error="invalid_request"`, "invalid_request", 400},
		{"padding in the middle", []string{"Bearer at_=abc"}, bare + `, error="invalid_request"`, "invalid_request", 400},
		{"too long", []string{"Bearer at_" + strings.Repeat("x", 5000)}, bare + `, error="invalid_request"`, "invalid_request", 400},
		{"two headers", []string{"Bearer " + secretToken, "Bearer " + secretToken}, bare + `, error="invalid_request"`, "invalid_request", 400},
		{"two headers, one empty", []string{"Bearer " + secretToken, ""}, bare + `, error="invalid_request"`, "invalid_request", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(h, tc.authz...)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			ch := rec.Header().Get("WWW-Authenticate")
			if tc.challenge == bare && ch != bare {
				t.Errorf("challenge %q, want exactly %q", ch, bare)
			}
			if tc.challenge != bare && !strings.HasPrefix(ch, tc.challenge) {
				t.Errorf("challenge %q, want prefix %q", ch, tc.challenge)
			}
			if m := errorBody(t, rec); m["error"] != tc.code {
				t.Errorf("error = %v, want %s", m["error"], tc.code)
			}
			assertNoLeak(t, "the response", rec.Body.String()+ch)
		})
	}
	if n := g.calls.Load(); n != 0 {
		t.Errorf("the gateway got %d calls for unusable headers, want 0", n)
	}
	if s.count() != 0 {
		t.Errorf("the handler ran %d times", s.count())
	}
}

// An inactive token is 401 invalid_token whatever its reasoning says, and
// the reasoning (free text from the gateway, possibly revealing which agents
// or targets exist) never reaches the unauthenticated caller; it is logged.
func TestRequireTokenRejectsInactiveTokens(t *testing.T) {
	for _, reason := range []string{"token expired", "token revoked", "unknown token", "target mismatch",
		"scope missing: files:read", "Insufficient scope", "agent bob-prod lacks scope files:read", ""} {
		t.Run(reason, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			g := newStubGateway(t, inactive(reason))
			c := newTestClient(t, g.URL)
			var s seen
			h := tokenauth.RequireToken(c, tokenauth.WithRequiredScopes("files:read"), tokenauth.WithLogger(logger))(s.handler())
			rec := serve(h, "Bearer "+secretToken)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			want := `Bearer realm="agenttrust", error="invalid_token", error_description="the token is not valid"`
			if ch := rec.Header().Get("WWW-Authenticate"); ch != want {
				t.Errorf("challenge %q, want %q", ch, want)
			}
			m := errorBody(t, rec)
			if m["error"] != "invalid_token" || m["error_description"] != "the token is not valid" {
				t.Errorf("body %v", m)
			}
			if reason != "" {
				for where, text := range map[string]string{"body": rec.Body.String(), "challenge": rec.Header().Get("WWW-Authenticate")} {
					if strings.Contains(text, reason) {
						t.Errorf("the %s echoes the gateway's reasoning: %s", where, text)
					}
				}
				if !strings.Contains(logs.String(), reason) {
					t.Errorf("the reasoning was not logged: %s", logs.String())
				}
			}
			if s.count() != 0 {
				t.Error("the handler ran for an inactive token")
			}
		})
	}
}

func TestRequireTokenInsufficientScope(t *testing.T) {
	cases := []struct {
		name    string
		answer  func(map[string]any) (int, string)
		missing string
	}{
		{"active without the scope", activeFor("files:read"), "files:write"},
		{"active without any scope", activeFor(), "files:read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newStubGateway(t, tc.answer)
			c := newTestClient(t, g.URL)
			var s seen
			h := tokenauth.RequireToken(c, tokenauth.WithRequiredScopes("files:read", "files:write"))(s.handler())
			rec := serve(h, "Bearer "+secretToken)
			if rec.Code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", rec.Code)
			}
			ch := rec.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer realm="agenttrust", error="insufficient_scope"`) ||
				!strings.HasSuffix(ch, `, scope="files:read files:write"`) {
				t.Errorf("challenge %q", ch)
			}
			m := errorBody(t, rec)
			if m["error"] != "insufficient_scope" {
				t.Errorf("error = %v", m["error"])
			}
			if m["error_description"] != "the token lacks a required scope" {
				t.Errorf("description %v", m["error_description"])
			}
			if s.count() != 0 {
				t.Error("the handler ran without the scope")
			}
		})
	}
}

// A scope reasoning without required scopes cannot be a scope problem of
// this route: it stays an invalid token.
func TestScopeReasoningWithoutRequiredScopesIsInvalidToken(t *testing.T) {
	g := newStubGateway(t, inactive("scope missing: x"))
	c := newTestClient(t, g.URL)
	rec := serve(tokenauth.RequireToken(c)(http.NotFoundHandler()), "Bearer "+secretToken)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status %d, want 401", rec.Code)
	}
}

func TestRequireTokenGatewayFailuresGive503(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	cases := []struct {
		name   string
		url    func(t *testing.T) string
		ctxTTL time.Duration
	}{
		{"closed listener", func(*testing.T) string { return closedURL }, 0},
		{"500", func(t *testing.T) string {
			return newStubGateway(t, func(map[string]any) (int, string) { return 500, `{"error":"boom"}` }).URL
		}, 0},
		{"503 with retry-after", func(t *testing.T) string {
			return newStubGateway(t, func(map[string]any) (int, string) { return 503, `{"error":"down"}` }).URL
		}, 0},
		{"gateway refuses our API key", func(t *testing.T) string {
			return newStubGateway(t, func(map[string]any) (int, string) { return 401, `{"error":"bad key"}` }).URL
		}, 0},
		{"garbage body", func(t *testing.T) string {
			return newStubGateway(t, func(map[string]any) (int, string) { return 200, `<html>oops` }).URL
		}, 0},
		{"wrong JSON type", func(t *testing.T) string {
			return newStubGateway(t, func(map[string]any) (int, string) { return 200, `{"active":"yes"}` }).URL
		}, 0},
		{"dropped connection", func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}, 0},
		{"hanging gateway", func(t *testing.T) string {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(func() { close(release); srv.Close() })
			return srv.URL
		}, 100 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newTestClient(t, tc.url(t))
			var s seen
			h := tokenauth.RequireToken(c, tokenauth.WithLogger(logger))(s.handler())
			req := httptest.NewRequest(http.MethodGet, "/tools", nil)
			req.Header.Set("Authorization", "Bearer "+secretToken)
			if tc.ctxTTL > 0 {
				ctx, cancel := context.WithTimeout(req.Context(), tc.ctxTTL)
				defer cancel()
				req = req.WithContext(ctx)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", rec.Code)
			}
			if s.count() != 0 {
				t.Fatal("a gateway failure let the request through")
			}
			if m := errorBody(t, rec); m["error"] != "temporarily_unavailable" {
				t.Errorf("error = %v", m["error"])
			}
			if ch := rec.Header().Get("WWW-Authenticate"); ch != "" {
				t.Errorf("a 503 carries a challenge %q", ch)
			}
			if !strings.Contains(logs.String(), "token introspection") {
				t.Errorf("no log record of the failure: %s", logs.String())
			}
			assertNoLeak(t, "the logs", logs.String())
			assertNoLeak(t, "the response", rec.Body.String())
		})
	}
}

// The gateway echoes the token everywhere it can; neither the responses nor
// the logs (at debug level) may contain it.
func TestTokenNeverLeaks(t *testing.T) {
	answers := []func(map[string]any) (int, string){
		inactive("token " + secretToken + " was revoked"),
		inactive("scope missing for " + secretToken),
		func(map[string]any) (int, string) { return 500, `{"error":"cannot parse ` + secretToken + `"}` },
		func(map[string]any) (int, string) { return 400, `{"message":"bad token ` + secretToken + `"}` },
		func(map[string]any) (int, string) { return 200, `not json ` + secretToken },
		activeFor("other"),
	}
	for i, answer := range answers {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			g := newStubGateway(t, answer)
			c := newTestClient(t, g.URL, agenttrust.WithLogger(logger))
			h := tokenauth.RequireToken(c, tokenauth.WithRequiredScopes("files:read"))(http.NotFoundHandler())
			for _, authz := range []string{"Bearer " + secretToken, "Bearer " + secretToken + " junk", "Bearer " + secretToken + `"`} {
				rec := serve(h, authz)
				if rec.Code == http.StatusOK || rec.Code == http.StatusNotFound {
					t.Fatalf("status %d: the request was admitted", rec.Code)
				}
				assertNoLeak(t, "the response body", rec.Body.String())
				for k, v := range rec.Header() {
					assertNoLeak(t, "the header "+k, strings.Join(v, ","))
				}
			}
			if logs.Len() == 0 {
				t.Error("nothing was logged at debug level")
			}
			assertNoLeak(t, "the logs", logs.String())
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	g := newStubGateway(t, inactive("token revoked"))
	c := newTestClient(t, g.URL)
	v, err := tokenauth.NewVerifier(c, tokenauth.WithRequiredScopes("a"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), secretToken)
	var rej *tokenauth.RejectedError
	if !errors.As(err, &rej) || rej.Reasoning != "token revoked" || rej.Code != tokenauth.CodeInvalidToken || rej.Malformed {
		t.Fatalf("err = %v, want a RejectedError for a revoked token", err)
	}
	if !errors.Is(err, tokenauth.ErrInvalidToken) || errors.Is(err, tokenauth.ErrInsufficientScope) || !errors.Is(err, agenttrust.ErrAgentTrust) {
		t.Errorf("errors.Is mismatch for %v", err)
	}
	var base *agenttrust.AgentTrustError
	if !errors.As(err, &base) || base.Code != tokenauth.CodeInvalidToken {
		t.Errorf("errors.As(*AgentTrustError) failed for %v", err)
	}

	g.mu.Lock()
	g.answer = activeFor("b")
	g.mu.Unlock()
	_, err = v.Verify(context.Background(), secretToken)
	if !errors.Is(err, tokenauth.ErrInsufficientScope) || errors.Is(err, tokenauth.ErrInvalidToken) {
		t.Errorf("err = %v, want insufficient scope", err)
	}
	if !errors.As(err, &rej) || rej.MissingScope != "a" || !reflect.DeepEqual(rej.RequiredScopes, []string{"a"}) {
		t.Errorf("rejection %+v", rej)
	}

	before := g.calls.Load()
	for _, tok := range []string{"", "has space", "at_\x00", strings.Repeat("a", 5000)} {
		_, err := v.Verify(context.Background(), tok)
		var rej *tokenauth.RejectedError
		if !errors.Is(err, tokenauth.ErrInvalidToken) || !errors.As(err, &rej) || !rej.Malformed {
			t.Errorf("Verify(%.20q) = %v, want a malformed ErrInvalidToken", tok, err)
		}
	}
	//lint:ignore SA1012 a nil context is the point
	if _, err := v.Verify(nil, secretToken); !errors.Is(err, agenttrust.ErrValidation) {
		t.Errorf("nil ctx: %v", err)
	}
	if n := g.calls.Load() - before; n != 0 {
		t.Errorf("%d gateway calls for unusable tokens", n)
	}

	// Gateway failures keep their own kind and are not rejections.
	g.mu.Lock()
	g.answer = func(map[string]any) (int, string) { return 502, "" }
	g.mu.Unlock()
	_, err = v.Verify(context.Background(), secretToken)
	if err == nil || errors.As(err, &rej) || errors.Is(err, tokenauth.ErrInvalidToken) {
		t.Errorf("err = %v, want a gateway error", err)
	}
}

func TestNewVerifierValidation(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1")
	bad := map[string][]tokenauth.Option{
		"nil client":     nil,
		"empty scope":    {tokenauth.WithRequiredScopes("a", "")},
		"scope w/ space": {tokenauth.WithRequiredScopes("a b")},
		"scope w/ quote": {tokenauth.WithRequiredScopes(`a"`)},
		"negative cache": {tokenauth.WithCache(-time.Second)},
		"zero size":      {tokenauth.WithCacheSize(0)},
		"nil clock":      {tokenauth.WithClock(nil)},
		"bad realm":      {tokenauth.WithRealm(`a"b`)},
		"empty realm":    {tokenauth.WithRealm("")},
	}
	for name, opts := range bad {
		client := c
		if name == "nil client" {
			client = nil
		}
		v, err := tokenauth.NewVerifier(client, opts...)
		if v != nil || !errors.Is(err, agenttrust.ErrValidation) {
			t.Errorf("%s: got %v, %v; want a validation error", name, v, err)
		}
		// The middleware built from the same configuration fails closed.
		var s seen
		rec := serve(tokenauth.RequireToken(client, opts...)(s.handler()), "Bearer "+secretToken)
		if rec.Code != http.StatusInternalServerError || s.count() != 0 {
			t.Errorf("%s: middleware status %d, handler calls %d; want 500 and none", name, rec.Code, s.count())
		}
		if m := errorBody(t, rec); m["error"] != "server_error" {
			t.Errorf("%s: body %v", name, m)
		}
	}
	if _, err := tokenauth.NewVerifier(c, nil, tokenauth.WithCache(0), tokenauth.WithRequiredScopes("a", "a", "b")); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// Two routes with their own scopes share one client.
func TestRequireTokenPerRoute(t *testing.T) {
	g := newStubGateway(t, activeFor("files:read"))
	c := newTestClient(t, g.URL)
	var read, write seen
	mux := http.NewServeMux()
	mux.Handle("/read", tokenauth.RequireToken(c, tokenauth.WithTarget("files"), tokenauth.WithRequiredScopes("files:read"))(read.handler()))
	mux.Handle("/write", tokenauth.RequireToken(c, tokenauth.WithTarget("files"), tokenauth.WithRequiredScopes("files:write"))(write.handler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+secretToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := do("/read"); st != http.StatusOK {
		t.Errorf("/read: %d", st)
	}
	if st := do("/write"); st != http.StatusForbidden {
		t.Errorf("/write: %d", st)
	}
	if read.count() != 1 || write.count() != 0 {
		t.Errorf("handler calls read %d write %d", read.count(), write.count())
	}
}

// fakeClock is a settable clock for cache tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCacheServesHitsAndExpires(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	g := newStubGateway(t, activeUntil(clk.now.Add(time.Hour), "files:read"))
	c := newTestClient(t, g.URL)
	var s seen
	h := tokenauth.RequireToken(c, tokenauth.WithCache(10*time.Second), tokenauth.WithClock(clk.Now))(s.handler())

	for i := 0; i < 3; i++ {
		if rec := serve(h, "Bearer "+secretToken); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d introspections for three requests within max age, want 1", n)
	}
	// Each request gets its own copy.
	s.mu.Lock()
	s.res.Scopes[0] = "tampered"
	s.mu.Unlock()
	serve(h, "Bearer "+secretToken)
	if s.res.Scopes[0] != "files:read" {
		t.Error("a handler's change to its result reached the cache")
	}

	clk.Advance(10*time.Second - time.Nanosecond)
	serve(h, "Bearer "+secretToken)
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("the entry expired early: %d calls", n)
	}
	clk.Advance(time.Nanosecond)
	serve(h, "Bearer "+secretToken)
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("the entry outlived its max age: %d calls, want 2", n)
	}
	// A different token is a different entry.
	serve(h, "Bearer at_other")
	if n := g.calls.Load(); n != 3 {
		t.Fatalf("another token was served from the cache: %d calls", n)
	}
}

func TestCacheNeverOutlivesToken(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	g := newStubGateway(t, activeUntil(clk.now.Add(2*time.Second)))
	c := newTestClient(t, g.URL)
	h := tokenauth.RequireToken(c, tokenauth.WithCache(time.Minute), tokenauth.WithClock(clk.Now))(http.NotFoundHandler())
	serve(h, "Bearer "+secretToken)
	clk.Advance(time.Second)
	serve(h, "Bearer "+secretToken)
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d calls before expiry, want 1", n)
	}
	g.mu.Lock()
	g.answer = inactive("token expired")
	g.mu.Unlock()
	clk.Advance(time.Second) // now == expires_at
	if rec := serve(h, "Bearer "+secretToken); rec.Code != http.StatusUnauthorized {
		t.Fatalf("status %d at the token's expiry, want 401 from a fresh introspection", rec.Code)
	}
	if n := g.calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestCacheSkipsNegativesErrorsAndUnknownExpiry(t *testing.T) {
	answers := map[string]func(map[string]any) (int, string){
		"inactive":       inactive("token revoked"),
		"error":          func(map[string]any) (int, string) { return 500, "" },
		"missing scope":  activeFor("other"),
		"unknown expiry": func(map[string]any) (int, string) { return 200, `{"active":true,"scopes":["s"]}` },
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			g := newStubGateway(t, answer)
			c := newTestClient(t, g.URL)
			h := tokenauth.RequireToken(c, tokenauth.WithRequiredScopes("s"))(http.NotFoundHandler())
			serve(h, "Bearer "+secretToken)
			serve(h, "Bearer "+secretToken)
			if n := g.calls.Load(); n != 2 {
				t.Errorf("%d introspections for two requests, want 2 (nothing cached)", n)
			}
		})
	}
}

func TestCacheDisabled(t *testing.T) {
	g := newStubGateway(t, activeFor())
	c := newTestClient(t, g.URL)
	h := tokenauth.RequireToken(c, tokenauth.WithCache(0))(http.NotFoundHandler())
	for i := 0; i < 3; i++ {
		serve(h, "Bearer "+secretToken)
	}
	if n := g.calls.Load(); n != 3 {
		t.Errorf("%d introspections with the cache off, want 3", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	g := newStubGateway(t, activeFor())
	c := newTestClient(t, g.URL)
	h := tokenauth.RequireToken(c, tokenauth.WithCacheSize(2), tokenauth.WithCache(time.Minute))(http.NotFoundHandler())
	for i := 0; i < 3; i++ {
		serve(h, fmt.Sprintf("Bearer at_tok%d", i))
	}
	// Three tokens in a cache of two: one was evicted and costs a call.
	before := g.calls.Load()
	for i := 0; i < 3; i++ {
		serve(h, fmt.Sprintf("Bearer at_tok%d", i))
	}
	if n := g.calls.Load() - before; n < 1 || n > 3 {
		t.Errorf("%d calls re-reading three tokens from a cache of two, want 1..3", n)
	}
	// The two most recently inserted tokens stay cached while nothing else
	// is inserted.
	serve(h, "Bearer at_x")
	serve(h, "Bearer at_y")
	before = g.calls.Load()
	serve(h, "Bearer at_x")
	serve(h, "Bearer at_y")
	if n := g.calls.Load() - before; n != 0 {
		t.Errorf("%d calls for the two cached tokens, want 0", n)
	}
}

// A waiter whose own request ends stops waiting at once, whatever the
// shared introspection does.
func TestWaiterHonoursItsOwnContext(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, `{"active":true,"expires_at":"2099-01-01T00:00:00Z"}`)
	}))
	defer srv.Close()
	defer once.Do(func() { close(release) })
	c := newTestClient(t, srv.URL)
	v, err := tokenauth.NewVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = v.Verify(ctx, secretToken)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, agenttrust.ErrNetwork) {
		t.Errorf("err = %v, want a network error wrapping the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify waited %v past its deadline", d)
	}
	once.Do(func() { close(release) })
	// The next caller starts afresh and succeeds.
	if _, err := v.Verify(context.Background(), secretToken); err != nil {
		t.Errorf("second Verify: %v", err)
	}
}

func TestMiddlewareOverRealHTTP(t *testing.T) {
	g := newStubGateway(t, activeFor("tools:call"))
	c := newTestClient(t, g.URL)
	var s seen
	srv := httptest.NewServer(tokenauth.RequireToken(c, tokenauth.WithRequiredScopes("tools:call"))(s.handler()))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+secretToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "tool ran" {
		t.Errorf("%d %q", resp.StatusCode, b)
	}
	resp, err = srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="agenttrust"` {
		t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestRequiredScopesIsACopy(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1")
	v, err := tokenauth.NewVerifier(c, tokenauth.WithRequiredScopes("b", "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	got := v.RequiredScopes()
	if !reflect.DeepEqual(got, []string{"b", "a"}) {
		t.Fatalf("RequiredScopes() = %v, want [b a]", got)
	}
	got[0] = "changed"
	if v.RequiredScopes()[0] != "b" {
		t.Error("RequiredScopes shares its slice with the verifier")
	}
	// A later WithRequiredScopes replaces the earlier one.
	v, err = tokenauth.NewVerifier(c, tokenauth.WithRequiredScopes("a"), tokenauth.WithRequiredScopes())
	if err != nil || len(v.RequiredScopes()) != 0 {
		t.Errorf("later empty WithRequiredScopes: %v %v", v.RequiredScopes(), err)
	}
}
