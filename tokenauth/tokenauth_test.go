package tokenauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	require.NotEmpty(t, g.bodies, "the gateway received no introspection")
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
	require.NoError(t, err)
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
	ct := rec.Header().Get("Content-Type")
	assert.Equal(t, "application/json", ct, "Content-Type = %q, want application/json", ct)
	var m map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &m), "error body %q is not JSON", rec.Body.String())
	assert.Len(t, m, 2, "error body keys = %v, want error and error_description", m)
	assert.NotNil(t, m["error"], "error body keys = %v, want error and error_description", m)
	assert.NotNil(t, m["error_description"], "error body keys = %v, want error and error_description", m)
	return m
}

func assertNoLeak(t *testing.T, where, s string) {
	t.Helper()
	assert.NotContains(t, s, secretToken, "the token leaked into %s: %s", where, s)
	assert.NotContains(t, s, "SECRETtoken", "the token leaked into %s: %s", where, s)
}

func TestRequireTokenAdmitsActiveToken(t *testing.T) {
	g := newStubGateway(t, activeFor("files:read", "files:write"))
	c := newTestClient(t, g.URL)
	var s seen
	h := tokenauth.RequireToken(c, tokenauth.WithTarget("files-service"), tokenauth.WithRequiredScopes("files:read"))(s.handler())

	rec := serve(h, "Bearer "+secretToken)
	require.Equal(t, http.StatusOK, rec.Code, "status %d body %q, want 200 from the handler", rec.Code, rec.Body.String())
	require.Equal(t, "tool ran", rec.Body.String(), "status %d body %q, want 200 from the handler", rec.Code, rec.Body.String())
	require.True(t, s.ok, "the handler found no introspection result in its context")
	require.NotNil(t, s.res, "the handler found no introspection result in its context")
	assert.Equal(t, "agent-1", s.res.AgentID, "handler saw %+v", s.res)
	assert.Equal(t, "org-1", s.res.OrgID, "handler saw %+v", s.res)
	assert.True(t, s.res.Active, "handler saw %+v", s.res)
	assert.Equal(t, []string{"files:read", "files:write"}, s.res.Scopes, "handler saw %+v", s.res)
	body := g.lastBody(t)
	want := map[string]any{"token": secretToken, "target": "files-service", "required_scopes": []any{"files:read"}}
	assert.Equal(t, want, body, "introspection body = %v, want %v", body, want)
}

func TestRequireTokenSendsNullTargetAndEmptyScopes(t *testing.T) {
	g := newStubGateway(t, activeFor())
	c := newTestClient(t, g.URL)
	var s seen
	h := tokenauth.RequireToken(c)(s.handler())
	rec := serve(h, "bearer "+secretToken)
	require.Equal(t, http.StatusOK, rec.Code, "status %d, want 200 (the scheme is case-insensitive)", rec.Code)
	body := g.lastBody(t)
	v, ok := body["target"]
	assert.True(t, ok, "target = %v (present %v), want null", v, ok)
	assert.Nil(t, v, "target = %v (present %v), want null", v, ok)
	v, ok = body["required_scopes"].([]any)
	assert.True(t, ok, "required_scopes = %#v, want []", body["required_scopes"])
	assert.Len(t, v, 0, "required_scopes = %#v, want []", body["required_scopes"])
}

func TestFromContextWithoutMiddleware(t *testing.T) {
	r, ok := tokenauth.FromContext(context.Background())
	assert.False(t, ok, "got %v %v from an empty context", r, ok)
	assert.Nil(t, r, "got %v %v from an empty context", r, ok)
	want := &agenttrust.IntrospectionResult{Active: true, AgentID: "a"}
	ctx := tokenauth.NewContext(context.Background(), want)
	r, ok = tokenauth.FromContext(ctx)
	assert.True(t, ok, "got %v %v, want the stored result", r, ok)
	assert.Equal(t, want, r, "got %v %v, want the stored result", r, ok)
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
			require.Equal(t, tc.status, rec.Code, "status %d, want %d", rec.Code, tc.status)
			ch := rec.Header().Get("WWW-Authenticate")
			if tc.challenge == bare {
				assert.Equal(t, bare, ch, "challenge %q, want exactly %q", ch, bare)
			} else {
				assert.True(t, strings.HasPrefix(ch, tc.challenge), "challenge %q, want prefix %q", ch, tc.challenge)
			}
			m := errorBody(t, rec)
			assert.Equal(t, tc.code, m["error"], "error = %v, want %s", m["error"], tc.code)
			assertNoLeak(t, "the response", rec.Body.String()+ch)
		})
	}
	n := g.calls.Load()
	assert.EqualValues(t, 0, n, "the gateway got %d calls for unusable headers, want 0", n)
	assert.EqualValues(t, 0, s.count(), "the handler ran %d times", s.count())
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
			require.Equal(t, http.StatusUnauthorized, rec.Code, "status %d, want 401", rec.Code)
			want := `Bearer realm="agenttrust", error="invalid_token", error_description="the token is not valid"`
			ch := rec.Header().Get("WWW-Authenticate")
			assert.Equal(t, want, ch, "challenge %q, want %q", ch, want)
			m := errorBody(t, rec)
			assert.Equal(t, "invalid_token", m["error"], "body %v", m)
			assert.Equal(t, "the token is not valid", m["error_description"], "body %v", m)
			if reason != "" {
				for where, text := range map[string]string{"body": rec.Body.String(), "challenge": rec.Header().Get("WWW-Authenticate")} {
					assert.NotContains(t, text, reason, "the %s echoes the gateway's reasoning: %s", where, text)
				}
				assert.Contains(t, logs.String(), reason, "the reasoning was not logged: %s", logs.String())
			}
			assert.EqualValues(t, 0, s.count(), "the handler ran for an inactive token")
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
			require.Equal(t, http.StatusForbidden, rec.Code, "status %d, want 403", rec.Code)
			ch := rec.Header().Get("WWW-Authenticate")
			assert.True(t, strings.HasPrefix(ch, `Bearer realm="agenttrust", error="insufficient_scope"`), "challenge %q", ch)
			assert.True(t, strings.HasSuffix(ch, `, scope="files:read files:write"`), "challenge %q", ch)
			m := errorBody(t, rec)
			assert.Equal(t, "insufficient_scope", m["error"], "error = %v", m["error"])
			assert.Equal(t, "the token lacks a required scope", m["error_description"], "description %v", m["error_description"])
			assert.EqualValues(t, 0, s.count(), "the handler ran without the scope")
		})
	}
}

// A scope reasoning without required scopes cannot be a scope problem of
// this route: it stays an invalid token.
func TestScopeReasoningWithoutRequiredScopesIsInvalidToken(t *testing.T) {
	g := newStubGateway(t, inactive("scope missing: x"))
	c := newTestClient(t, g.URL)
	rec := serve(tokenauth.RequireToken(c)(http.NotFoundHandler()), "Bearer "+secretToken)
	assert.Equal(t, http.StatusUnauthorized, rec.Code, "status %d, want 401", rec.Code)
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
			require.Equal(t, http.StatusServiceUnavailable, rec.Code, "status %d, want 503", rec.Code)
			require.EqualValues(t, 0, s.count(), "a gateway failure let the request through")
			m := errorBody(t, rec)
			assert.Equal(t, "temporarily_unavailable", m["error"], "error = %v", m["error"])
			ch := rec.Header().Get("WWW-Authenticate")
			assert.Equal(t, "", ch, "a 503 carries a challenge %q", ch)
			assert.Contains(t, logs.String(), "token introspection", "no log record of the failure: %s", logs.String())
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
				require.NotEqual(t, http.StatusOK, rec.Code, "status %d: the request was admitted", rec.Code)
				require.NotEqual(t, http.StatusNotFound, rec.Code, "status %d: the request was admitted", rec.Code)
				assertNoLeak(t, "the response body", rec.Body.String())
				for k, v := range rec.Header() {
					assertNoLeak(t, "the header "+k, strings.Join(v, ","))
				}
			}
			assert.NotEqualValues(t, 0, logs.Len(), "nothing was logged at debug level")
			assertNoLeak(t, "the logs", logs.String())
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	g := newStubGateway(t, inactive("token revoked"))
	c := newTestClient(t, g.URL)
	v, err := tokenauth.NewVerifier(c, tokenauth.WithRequiredScopes("a"))
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), secretToken)
	var rej *tokenauth.RejectedError
	require.ErrorAs(t, err, &rej, "err = %v, want a RejectedError for a revoked token", err)
	require.Equal(t, "token revoked", rej.Reasoning, "err = %v, want a RejectedError for a revoked token", err)
	require.Equal(t, tokenauth.CodeInvalidToken, rej.Code, "err = %v, want a RejectedError for a revoked token", err)
	require.False(t, rej.Malformed, "err = %v, want a RejectedError for a revoked token", err)
	assert.ErrorIs(t, err, tokenauth.ErrInvalidToken, "errors.Is mismatch for %v", err)
	assert.NotErrorIs(t, err, tokenauth.ErrInsufficientScope, "errors.Is mismatch for %v", err)
	assert.ErrorIs(t, err, agenttrust.ErrAgentTrust, "errors.Is mismatch for %v", err)
	var base *agenttrust.AgentTrustError
	assert.ErrorAs(t, err, &base, "errors.As(*AgentTrustError) failed for %v", err)
	assert.Equal(t, tokenauth.CodeInvalidToken, base.Code, "errors.As(*AgentTrustError) failed for %v", err)

	g.mu.Lock()
	g.answer = activeFor("b")
	g.mu.Unlock()
	_, err = v.Verify(context.Background(), secretToken)
	assert.ErrorIs(t, err, tokenauth.ErrInsufficientScope, "err = %v, want insufficient scope", err)
	assert.NotErrorIs(t, err, tokenauth.ErrInvalidToken, "err = %v, want insufficient scope", err)
	if assert.ErrorAs(t, err, &rej, "rejection %+v", rej) {
		assert.Equal(t, "a", rej.MissingScope, "rejection %+v", rej)
		assert.Equal(t, []string{"a"}, rej.RequiredScopes, "rejection %+v", rej)
	}

	before := g.calls.Load()
	for _, tok := range []string{"", "has space", "at_\x00", strings.Repeat("a", 5000)} {
		_, err := v.Verify(context.Background(), tok)
		var rej *tokenauth.RejectedError
		assert.ErrorIs(t, err, tokenauth.ErrInvalidToken, "Verify(%.20q) = %v, want a malformed ErrInvalidToken", tok, err)
		assert.ErrorAs(t, err, &rej, "Verify(%.20q) = %v, want a malformed ErrInvalidToken", tok, err)
		assert.True(t, rej.Malformed, "Verify(%.20q) = %v, want a malformed ErrInvalidToken", tok, err)
	}
	//lint:ignore SA1012 a nil context is the point
	_, err = v.Verify(nil, secretToken)
	assert.ErrorIs(t, err, agenttrust.ErrValidation, "nil ctx: %v", err)
	n := g.calls.Load() - before
	assert.EqualValues(t, 0, n, "%d gateway calls for unusable tokens", n)

	// Gateway failures keep their own kind and are not rejections.
	g.mu.Lock()
	g.answer = func(map[string]any) (int, string) { return 502, "" }
	g.mu.Unlock()
	_, err = v.Verify(context.Background(), secretToken)
	assert.Error(t, err, "want a gateway error")
	assert.NotErrorAs(t, err, &rej, "err = %v, want a gateway error", err)
	assert.NotErrorIs(t, err, tokenauth.ErrInvalidToken, "err = %v, want a gateway error", err)
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
		assert.Nil(t, v, "%s: got %v, %v; want a validation error", name, v, err)
		assert.ErrorIs(t, err, agenttrust.ErrValidation, "%s: got %v, %v; want a validation error", name, v, err)
		// The middleware built from the same configuration fails closed.
		var s seen
		rec := serve(tokenauth.RequireToken(client, opts...)(s.handler()), "Bearer "+secretToken)
		assert.Equal(t, http.StatusInternalServerError, rec.Code, "%s: middleware status %d, handler calls %d; want 500 and none", name, rec.Code, s.count())
		assert.EqualValues(t, 0, s.count(), "%s: middleware status %d, handler calls %d; want 500 and none", name, rec.Code, s.count())
		m := errorBody(t, rec)
		assert.Equal(t, "server_error", m["error"], "%s: body %v", name, m)
	}
	_, err := tokenauth.NewVerifier(c, nil, tokenauth.WithCache(0), tokenauth.WithRequiredScopes("a", "a", "b"))
	assert.NoError(t, err, "valid options")
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
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	st := do("/read")
	assert.Equal(t, http.StatusOK, st, "/read: %d", st)
	st = do("/write")
	assert.Equal(t, http.StatusForbidden, st, "/write: %d", st)
	assert.EqualValues(t, 1, read.count(), "handler calls read %d write %d", read.count(), write.count())
	assert.EqualValues(t, 0, write.count(), "handler calls read %d write %d", read.count(), write.count())
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
		rec := serve(h, "Bearer "+secretToken)
		require.Equal(t, http.StatusOK, rec.Code, "request %d: %d", i, rec.Code)
	}
	n := g.calls.Load()
	require.EqualValues(t, 1, n, "%d introspections for three requests within max age, want 1", n)
	// Each request gets its own copy.
	s.mu.Lock()
	s.res.Scopes[0] = "tampered"
	s.mu.Unlock()
	serve(h, "Bearer "+secretToken)
	assert.Equal(t, "files:read", s.res.Scopes[0], "a handler's change to its result reached the cache")

	clk.Advance(10*time.Second - time.Nanosecond)
	serve(h, "Bearer "+secretToken)
	n = g.calls.Load()
	require.EqualValues(t, 1, n, "the entry expired early: %d calls", n)
	clk.Advance(time.Nanosecond)
	serve(h, "Bearer "+secretToken)
	n = g.calls.Load()
	require.EqualValues(t, 2, n, "the entry outlived its max age: %d calls, want 2", n)
	// A different token is a different entry.
	serve(h, "Bearer at_other")
	n = g.calls.Load()
	require.EqualValues(t, 3, n, "another token was served from the cache: %d calls", n)
}

func TestCacheNeverOutlivesToken(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	g := newStubGateway(t, activeUntil(clk.now.Add(2*time.Second)))
	c := newTestClient(t, g.URL)
	h := tokenauth.RequireToken(c, tokenauth.WithCache(time.Minute), tokenauth.WithClock(clk.Now))(http.NotFoundHandler())
	serve(h, "Bearer "+secretToken)
	clk.Advance(time.Second)
	serve(h, "Bearer "+secretToken)
	n := g.calls.Load()
	require.EqualValues(t, 1, n, "%d calls before expiry, want 1", n)
	g.mu.Lock()
	g.answer = inactive("token expired")
	g.mu.Unlock()
	clk.Advance(time.Second) // now == expires_at
	rec := serve(h, "Bearer "+secretToken)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "status %d at the token's expiry, want 401 from a fresh introspection", rec.Code)
	n = g.calls.Load()
	assert.EqualValues(t, 2, n, "%d calls, want 2", n)
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
			n := g.calls.Load()
			assert.EqualValues(t, 2, n, "%d introspections for two requests, want 2 (nothing cached)", n)
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
	n := g.calls.Load()
	assert.EqualValues(t, 3, n, "%d introspections with the cache off, want 3", n)
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
	n := g.calls.Load() - before
	assert.GreaterOrEqual(t, n, int64(1), "%d calls re-reading three tokens from a cache of two, want 1..3", n)
	assert.LessOrEqual(t, n, int64(3), "%d calls re-reading three tokens from a cache of two, want 1..3", n)
	// The two most recently inserted tokens stay cached while nothing else
	// is inserted.
	serve(h, "Bearer at_x")
	serve(h, "Bearer at_y")
	before = g.calls.Load()
	serve(h, "Bearer at_x")
	serve(h, "Bearer at_y")
	n = g.calls.Load() - before
	assert.EqualValues(t, 0, n, "%d calls for the two cached tokens, want 0", n)
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
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = v.Verify(ctx, secretToken)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "err = %v, want a network error wrapping the deadline", err)
	assert.ErrorIs(t, err, agenttrust.ErrNetwork, "err = %v, want a network error wrapping the deadline", err)
	d := time.Since(start)
	assert.LessOrEqual(t, d, 2*time.Second, "Verify waited %v past its deadline", d)
	once.Do(func() { close(release) })
	// The next caller starts afresh and succeeds.
	_, err = v.Verify(context.Background(), secretToken)
	assert.NoError(t, err, "second Verify")
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
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.EqualValues(t, 200, resp.StatusCode, "%d %q", resp.StatusCode, b)
	assert.Equal(t, "tool ran", string(b), "%d %q", resp.StatusCode, b)
	resp, err = srv.Client().Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 401, resp.StatusCode, "no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	assert.Equal(t, `Bearer realm="agenttrust"`, resp.Header.Get("WWW-Authenticate"), "no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
}

func TestRequiredScopesIsACopy(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1")
	v, err := tokenauth.NewVerifier(c, tokenauth.WithRequiredScopes("b", "a", "b"))
	require.NoError(t, err)
	got := v.RequiredScopes()
	require.Equal(t, []string{"b", "a"}, got, "RequiredScopes() = %v, want [b a]", got)
	got[0] = "changed"
	assert.Equal(t, "b", v.RequiredScopes()[0], "RequiredScopes shares its slice with the verifier")
	// A later WithRequiredScopes replaces the earlier one.
	v, err = tokenauth.NewVerifier(c, tokenauth.WithRequiredScopes("a"), tokenauth.WithRequiredScopes())
	assert.NoError(t, err, "later empty WithRequiredScopes: %v %v", v.RequiredScopes(), err)
	assert.Len(t, v.RequiredScopes(), 0, "later empty WithRequiredScopes: %v %v", v.RequiredScopes(), err)
}
