package tokenauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/agenttrusttest"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const introspectEndpoint = "POST /api/v1/agent-tokens/introspect"

// provider is a fake gateway on split listeners, a client for it, and a
// token issued to an agent with the files:read and files:write capabilities.
type provider struct {
	srv     *agenttrusttest.Server
	client  *agenttrust.Client
	agentID string
}

func newProvider(t *testing.T, opts ...agenttrust.Option) *provider {
	t.Helper()
	srv := agenttrusttest.NewTestServer(t, agenttrusttest.WithSplitListeners())
	base := []agenttrust.Option{
		agenttrust.WithBaseURL(srv.URL()), agenttrust.WithAuthURL(srv.AuthURL()), agenttrust.WithAuditURL(srv.AuditURL()),
		agenttrust.WithAPIKey(srv.APIKey()), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}),
		agenttrust.WithTimeout(5 * time.Second),
	}
	c, err := agenttrust.New(append(base, opts...)...)
	require.NoError(t, err)
	p := &provider{srv: srv, client: c}
	p.agentID = srv.SeedAgent(agenttrusttest.AgentSeed{
		Name: "files-bot", Capabilities: []string{"files:read", "files:write"},
		Metadata: map[string]any{"allowed_targets": []any{"files-service"}},
	})
	return p
}

func (p *provider) issue(t *testing.T, ttl int, scopes ...string) string {
	t.Helper()
	tok, err := p.client.Tokens.Issue(context.Background(), agenttrust.TokenIssueParams{
		AgentID: p.agentID, Scopes: scopes, TTLSeconds: ttl, NoCache: true,
	})
	require.NoError(t, err)
	return tok.Token
}

func (p *provider) introspections() []map[string]any {
	var out []map[string]any
	for _, r := range p.srv.Requests() {
		if r.Method == http.MethodPost && r.Path == "/api/v1/agent-tokens/introspect" {
			var m map[string]any
			_ = json.Unmarshal(r.Body, &m)
			out = append(out, m)
		}
	}
	return out
}

func TestFakeGatewayValidToken(t *testing.T) {
	p := newProvider(t)
	tok := p.issue(t, 300, "files:read")
	var s seen
	h := tokenauth.RequireToken(p.client, tokenauth.WithTarget("files-service"),
		tokenauth.WithRequiredScopes("files:read"))(s.handler())
	rec := serve(h, "Bearer "+tok)
	require.Equal(t, http.StatusOK, rec.Code, "status %d: %s", rec.Code, rec.Body)
	assert.Equal(t, p.agentID, s.res.AgentID, "handler saw %+v", s.res)
	assert.Equal(t, p.srv.OrgID(), s.res.OrgID, "handler saw %+v", s.res)
	assert.Equal(t, []string{"files:read"}, s.res.Scopes, "handler saw %+v", s.res)
	assert.True(t, s.res.ExpiresAt.Equal(p.srv.Now().Add(300*time.Second).Truncate(time.Second)), "expires_at %v", s.res.ExpiresAt)
	in := p.introspections()
	require.Len(t, in, 1, "%d introspections", len(in))
	want := map[string]any{"token": tok, "target": "files-service", "required_scopes": []any{"files:read"}}
	assert.Equal(t, want, in[0], "wire body %v, want %v", in[0], want)
	// The introspection went to the auth listener.
	for _, r := range p.srv.Requests() {
		if strings.HasSuffix(r.Path, "/introspect") {
			assert.Equal(t, "auth", r.Listener, "introspection served by %q, want auth", r.Listener)
		}
	}
}

func TestFakeGatewayRejections(t *testing.T) {
	p := newProvider(t)
	readOnly := p.issue(t, 300, "files:read")
	cases := []struct {
		name   string
		opts   []tokenauth.Option
		token  func(t *testing.T) string
		status int
		code   string
		reason string // the fake's reasoning: logged, never sent
	}{
		{"unknown", nil, func(*testing.T) string { return "at_never_issued" }, 401, "invalid_token", "unknown token"},
		{"expired", nil, func(t *testing.T) string {
			tok := p.issue(t, 30, "files:read")
			p.srv.Advance(31 * time.Second)
			return tok
		}, 401, "invalid_token", "token expired"},
		{"revoked", nil, func(t *testing.T) string {
			tok := p.issue(t, 300, "files:read")
			require.NoError(t, p.client.Tokens.Revoke(context.Background(), tok, ""))
			return tok
		}, 401, "invalid_token", "token revoked"},
		{"wrong target", []tokenauth.Option{tokenauth.WithTarget("billing-service")},
			func(*testing.T) string { return readOnly }, 401, "invalid_token", "target mismatch"},
		// The fake answers a missing required scope with active=false, so it
		// is an invalid token: only structured fields decide the status.
		{"missing scope", []tokenauth.Option{tokenauth.WithTarget("files-service"), tokenauth.WithRequiredScopes("files:write")},
			func(*testing.T) string { return readOnly }, 401, "invalid_token", "scope missing: files:write"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			var s seen
			opts := append([]tokenauth.Option{tokenauth.WithLogger(logger)}, tc.opts...)
			h := tokenauth.RequireToken(p.client, opts...)(s.handler())
			tok := tc.token(t)
			rec := serve(h, "Bearer "+tok)
			require.Equal(t, tc.status, rec.Code, "status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			m := errorBody(t, rec)
			assert.Equal(t, tc.code, m["error"], "body %v, want %s and a generic description", m, tc.code)
			assert.Equal(t, "the token is not valid", m["error_description"], "body %v, want %s and a generic description", m, tc.code)
			assert.NotContains(t, rec.Body.String(), tc.reason, "the body echoes the reasoning %q: %s", tc.reason, rec.Body)
			ch := rec.Header().Get("WWW-Authenticate")
			assert.Contains(t, ch, `error="`+tc.code+`"`, "challenge %q", ch)
			assert.EqualValues(t, 0, s.count(), "the handler ran")
			for _, where := range []string{rec.Body.String(), ch, logs.String()} {
				assert.NotContains(t, where, tok, "the token leaked: %s", where)
			}
			assert.Contains(t, logs.String(), tc.reason, "the rejection was not logged: %s", logs.String())
		})
	}
}

// With a cache, a revoked token keeps working until the entry's max age
// (the documented trade-off), then is refused; the cache follows the
// injected clock, here the fake gateway's.
func TestFakeGatewayCachedRevocationLatency(t *testing.T) {
	p := newProvider(t)
	tok := p.issue(t, 300, "files:read")
	var s seen
	h := tokenauth.RequireToken(p.client, tokenauth.WithCache(5*time.Second),
		tokenauth.WithClock(p.srv.Now))(s.handler())
	rec := serve(h, "Bearer "+tok)
	require.EqualValues(t, 200, rec.Code, "status %d", rec.Code)
	require.NoError(t, p.client.Tokens.Revoke(context.Background(), tok, "compromised"))
	p.srv.Advance(4 * time.Second)
	rec = serve(h, "Bearer "+tok)
	require.EqualValues(t, 200, rec.Code, "within max age: status %d, want 200 from the cache", rec.Code)
	n := len(p.introspections())
	require.EqualValues(t, 1, n, "%d introspections, want 1", n)
	p.srv.Advance(time.Second)
	rec = serve(h, "Bearer "+tok)
	require.EqualValues(t, 401, rec.Code, "after max age: status %d, want 401", rec.Code)
	// Negative answers are not cached, and nothing re-admits the token.
	rec = serve(h, "Bearer "+tok)
	require.EqualValues(t, 401, rec.Code, "status %d, want 401", rec.Code)
	n = len(p.introspections())
	assert.EqualValues(t, 3, n, "%d introspections, want 3", n)
}

// A cached entry ends at the token's expiry even when max age is longer.
func TestFakeGatewayCacheStopsAtExpiry(t *testing.T) {
	p := newProvider(t)
	tok := p.issue(t, 3, "files:read")
	h := tokenauth.RequireToken(p.client, tokenauth.WithCache(time.Hour),
		tokenauth.WithClock(p.srv.Now))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec := serve(h, "Bearer "+tok)
	require.EqualValues(t, 200, rec.Code, "status %d", rec.Code)
	p.srv.Advance(2 * time.Second)
	rec = serve(h, "Bearer "+tok)
	require.EqualValues(t, 200, rec.Code, "status %d", rec.Code)
	p.srv.Advance(2 * time.Second)
	rec = serve(h, "Bearer "+tok)
	require.EqualValues(t, 401, rec.Code, "past expiry: %d %s, want 401 invalid_token", rec.Code, rec.Body)
	require.Contains(t, rec.Body.String(), "invalid_token", "past expiry: %d %s, want 401 invalid_token", rec.Code, rec.Body)
	n := len(p.introspections())
	assert.EqualValues(t, 2, n, "%d introspections, want 2", n)
}

func TestFakeGatewayFaultsGive503(t *testing.T) {
	faults := map[string]agenttrusttest.Fault{
		"503":       {Status: 503, RetryAfter: "1"},
		"500":       {Status: 500},
		"drop":      {Drop: true},
		"malformed": {Malformed: true},
		// Longer than the request's 200 ms, shorter than the client's 5 s:
		// the request gives up, while the introspection it started goes on
		// and serves the request after recovery.
		"latency": {Latency: time.Second},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			p := newProvider(t)
			tok := p.issue(t, 300, "files:read")
			p.srv.InjectFault(introspectEndpoint, f)
			var s seen
			h := tokenauth.RequireToken(p.client)(s.handler())
			req, cancel := requestWithTimeout(tok, 200*time.Millisecond)
			defer cancel()
			rec := serveRequest(h, req)
			require.Equal(t, http.StatusServiceUnavailable, rec.Code, "status %d, handler calls %d; want 503 and none", rec.Code, s.count())
			require.EqualValues(t, 0, s.count(), "status %d, handler calls %d; want 503 and none", rec.Code, s.count())
			assert.NotContains(t, rec.Body.String(), tok, "the token leaked")
			// Once the gateway recovers, the same token is admitted: the
			// failure was not cached.
			p.srv.ClearFaults()
			rec = serve(h, "Bearer "+tok)
			assert.EqualValues(t, 200, rec.Code, "after recovery: %d", rec.Code)
		})
	}
	t.Run("gateway closed", func(t *testing.T) {
		p := newProvider(t)
		tok := p.issue(t, 300, "files:read")
		p.srv.Close()
		rec := serve(tokenauth.RequireToken(p.client)(http.NotFoundHandler()), "Bearer "+tok)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "status %d, want 503", rec.Code)
	})
}

func requestWithTimeout(token string, d time.Duration) (*http.Request, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/tools/call", http.NoBody)
	req.Header.Set("Authorization", "Bearer "+token)
	return req, cancel
}

func serveRequest(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
