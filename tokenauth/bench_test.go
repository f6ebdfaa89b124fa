package tokenauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/stretchr/testify/require"
)

// okHandler is the protected handler of every benchmark: it reads the
// introspection result, as a real tool would.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if res, ok := tokenauth.FromContext(r.Context()); ok && res.AgentID == "" {
		w.WriteHeader(http.StatusTeapot)
	}
})

func benchRequest() *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/tools/call", http.NoBody)
	req.Header.Set("Authorization", "Bearer "+secretToken)
	return req
}

func runHandler(b *testing.B, h http.Handler) {
	b.Helper()
	req := benchRequest()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(b, http.StatusOK, rec.Code, "status %d", rec.Code)
	}
}

// BenchmarkBareHandler is the baseline: the handler without middleware.
func BenchmarkBareHandler(b *testing.B) {
	runHandler(b, okHandler)
}

// BenchmarkMiddlewareCached is a request whose token is in the cache: no
// network, header parsing, hashing, a map lookup and the context copy.
func BenchmarkMiddlewareCached(b *testing.B) {
	g := newStubGateway(b, activeFor("tools:call"))
	c := newTestClient(b, g.URL)
	h := tokenauth.RequireToken(c, tokenauth.WithRequiredScopes("tools:call"))(okHandler)
	runHandler(b, h) // the first request fills the cache
	n := g.calls.Load()
	require.EqualValues(b, 1, n, "%d introspections, want 1", n)
}

// BenchmarkMiddlewareUncached makes one introspection per request over
// loopback; compare with BenchmarkIntrospectRoundTrip.
func BenchmarkMiddlewareUncached(b *testing.B) {
	g := newStubGateway(b, activeFor("tools:call"))
	c := newTestClient(b, g.URL)
	h := tokenauth.RequireToken(c, tokenauth.WithRequiredScopes("tools:call"), tokenauth.WithCache(0))(okHandler)
	runHandler(b, h)
	n := g.calls.Load()
	require.GreaterOrEqual(b, n, int64(b.N), "%d introspections for %d requests", n, b.N)
}

// BenchmarkIntrospectRoundTrip is the raw Tokens.Introspect call against the
// same stub gateway.
func BenchmarkIntrospectRoundTrip(b *testing.B) {
	g := newStubGateway(b, activeFor("tools:call"))
	c := newTestClient(b, g.URL)
	p := agenttrust.TokenIntrospectParams{Token: secretToken, RequiredScopes: []string{"tools:call"}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := c.Tokens.Introspect(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		if !res.Active {
			b.Fatal(res, err)
		}
	}
}
