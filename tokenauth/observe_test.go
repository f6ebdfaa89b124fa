package tokenauth_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cacheLog records the CacheLookup hooks of a Client's Observer.
type cacheLog struct {
	mu      sync.Mutex
	lookups []string
}

func (l *cacheLog) observer() *agenttrust.Observer {
	return &agenttrust.Observer{CacheLookup: func(_ context.Context, kind agenttrust.CacheKind, hit bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		s := "miss"
		if hit {
			s = "hit"
		}
		l.lookups = append(l.lookups, string(kind)+" "+s)
	}}
}

func (l *cacheLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lookups, ",")
}

// The Verifier reports its introspection cache to the Client's Observer:
// a miss, then a hit, and nothing when the cache is off.
func TestVerifierReportsCacheLookups(t *testing.T) {
	var log cacheLog
	p := newProvider(t, agenttrust.WithObserver(log.observer()))
	tok := p.issue(t, 300, "files:read")
	cached, err := tokenauth.NewVerifier(p.client, tokenauth.WithRequiredScopes("files:read"))
	require.NoError(t, err)
	off, err := tokenauth.NewVerifier(p.client, tokenauth.WithCache(0))
	require.NoError(t, err)
	for _, v := range []*tokenauth.Verifier{cached, cached, off} {
		_, err := v.Verify(context.Background(), tok)
		require.NoError(t, err)
	}
	got, want := log.String(), "introspection miss,introspection hit"
	assert.Equal(t, want, got, "cache lookups %q, want %q (none with the cache off)", got, want)

	// The middleware goes through the same cache.
	h := cached.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec := serve(h, "Bearer "+tok)
	require.Equal(t, http.StatusOK, rec.Code, "status %d: %s", rec.Code, rec.Body)
	got, want = log.String(), "introspection miss,introspection hit,introspection hit"
	assert.Equal(t, want, got, "cache lookups %q, want %q", got, want)
	n := len(p.introspections())
	assert.EqualValues(t, 2, n, "%d introspections, want 2 (one per verifier)", n)
}
