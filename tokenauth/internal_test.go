package tokenauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockingGateway answers introspections only when released, and counts
// them.
type blockingGateway struct {
	*httptest.Server
	calls     atomic.Int64
	cancelled atomic.Int64
	release   chan struct{}
	once      sync.Once
}

func newBlockingGateway(t *testing.T) *blockingGateway {
	g := &blockingGateway{release: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-g.release:
			_, _ = io.WriteString(w, `{"active":true,"agent_id":"a1","org_id":"o1","scopes":["s"],"expires_at":"2099-01-01T00:00:00Z"}`)
		case <-r.Context().Done():
			g.cancelled.Add(1)
		}
	}))
	t.Cleanup(func() { g.open(); g.Close() })
	return g
}

func (g *blockingGateway) open() { g.once.Do(func() { close(g.release) }) }

func newInternalVerifier(t *testing.T, url string, opts ...Option) *Verifier {
	t.Helper()
	c, err := agenttrust.New(agenttrust.WithBaseURL(url), agenttrust.WithAuthURL(url), agenttrust.WithRetryPolicy(agenttrust.RetryPolicy{}))
	require.NoError(t, err)
	v, err := NewVerifier(c, opts...)
	require.NoError(t, err)
	return v
}

// waitWaiters polls until the flight for token has n waiters.
func waitWaiters(t *testing.T, v *Verifier, token string, n int) {
	t.Helper()
	key := v.cacheKey(token)
	require.Eventually(t, func() bool { return v.flights.Waiters(key) == n }, 10*time.Second, time.Millisecond,
		"waiting for %d waiters", n)
}

// 100 concurrent first requests with one token make one introspection, and
// all of them are admitted with the shared answer.
func TestConcurrentFirstRequestsShareOneIntrospection(t *testing.T) {
	g := newBlockingGateway(t)
	v := newInternalVerifier(t, g.URL, WithRequiredScopes("s"))
	const n = 100
	var admitted atomic.Int64
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if res, ok := FromContext(r.Context()); ok && res.AgentID == "a1" {
			admitted.Add(1)
		}
	}))
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer at_shared")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			codes[i] = rec.Code
		}(i)
	}
	waitWaiters(t, v, "at_shared", n)
	g.open()
	wg.Wait()
	c := g.calls.Load()
	assert.EqualValues(t, 1, c, "%d introspections for %d concurrent requests, want 1", c, n)
	for i, c := range codes {
		require.Equal(t, http.StatusOK, c, "request %d: status %d", i, c)
	}
	a := admitted.Load()
	assert.EqualValues(t, n, a, "%d handlers saw the result, want %d", a, n)
	inflight := v.flights.Len()
	v.mu.Lock()
	defer v.mu.Unlock()
	assert.EqualValues(t, 0, inflight, "inflight %d entries %d, want 0 and 1", inflight, len(v.entries))
	assert.Len(t, v.entries, 1, "inflight %d entries %d, want 0 and 1", inflight, len(v.entries))
}

func waitCalls(t *testing.T, g *blockingGateway, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return g.calls.Load() == n }, 10*time.Second, time.Millisecond,
		"waiting for %d calls to reach the gateway", n)
}

// The shared call does not depend on the request that started it: when that
// request ends, the call goes on (the gateway sees no cancellation) and the
// callers still waiting get its answer. Each caller leaves when its own
// context ends, and disturbs nobody.
func TestSharedCallOutlivesItsStarter(t *testing.T) {
	g := newBlockingGateway(t)
	v := newInternalVerifier(t, g.URL)
	starterCtx, cancelStarter := context.WithCancel(context.Background())
	defer cancelStarter()
	type outcome struct {
		res *agenttrust.IntrospectionResult
		err error
	}
	starter := make(chan outcome, 1)
	go func() { r, err := v.Verify(starterCtx, "at_tok"); starter <- outcome{r, err} }()
	waitCalls(t, g, 1)

	quitterCtx, cancelQuitter := context.WithCancel(context.Background())
	quitter := make(chan error, 1)
	go func() { _, err := v.Verify(quitterCtx, "at_tok"); quitter <- err }()
	follower := make(chan outcome, 1)
	go func() { r, err := v.Verify(context.Background(), "at_tok"); follower <- outcome{r, err} }()
	waitWaiters(t, v, "at_tok", 3)

	cancelQuitter()
	err := <-quitter
	require.ErrorIs(t, err, context.Canceled, "quitter: %v", err)
	require.ErrorIs(t, err, agenttrust.ErrNetwork, "quitter: %v", err)
	cancelStarter()
	o := <-starter
	require.ErrorIs(t, o.err, context.Canceled, "starter: %v", o.err)
	require.ErrorIs(t, o.err, agenttrust.ErrNetwork, "starter: %v", o.err)
	waitWaiters(t, v, "at_tok", 1) // the follower still waits on the same call
	g.open()
	o = <-follower
	require.NoError(t, o.err, "follower: %v %v", o.res, o.err)
	require.NotNil(t, o.res, "follower: %v %v", o.res, o.err)
	require.Equal(t, "a1", o.res.AgentID, "follower: %v %v", o.res, o.err)
	c, x := g.calls.Load(), g.cancelled.Load()
	assert.EqualValues(t, 1, c, "%d gateway calls, %d cancelled; want 1 and 0", c, x)
	assert.EqualValues(t, 0, x, "%d gateway calls, %d cancelled; want 1 and 0", c, x)
	inflight := v.flights.Len()
	v.mu.Lock()
	defer v.mu.Unlock()
	assert.EqualValues(t, 0, inflight, "inflight %d entries %d, want 0 and 1", inflight, len(v.entries))
	assert.Len(t, v.entries, 1, "inflight %d entries %d, want 0 and 1", inflight, len(v.entries))
}

func TestCacheKeySeparatesTargetsAndScopes(t *testing.T) {
	c, err := agenttrust.New()
	require.NoError(t, err)
	mk := func(opts ...Option) [32]byte {
		v, err := NewVerifier(c, opts...)
		require.NoError(t, err)
		return v.cacheKey("at_tok")
	}
	base := mk()
	assert.NotEqual(t, base, mk(WithTarget("x")), "target or scopes do not change the key")
	assert.NotEqual(t, base, mk(WithRequiredScopes("x")), "target or scopes do not change the key")
	assert.Equal(t, mk(WithRequiredScopes("b", "a")), mk(WithRequiredScopes("a", "b")), "the scope order changes the key")
	assert.NotEqual(t, mk(WithRequiredScopes("a", "b")), mk(WithRequiredScopes("a:b")), "scope boundaries are ambiguous")
	assert.NotEqual(t, mk(WithTarget("a"), WithRequiredScopes("b")), mk(WithTarget("ab")), "target and scope boundaries are ambiguous")
}

func TestEvictionPrefersExpiredEntries(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _ := agenttrust.New()
	v, err := NewVerifier(c, WithCacheSize(3), WithCache(time.Minute), WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	res := func(exp time.Time) *agenttrust.IntrospectionResult {
		return &agenttrust.IntrospectionResult{Active: true, ExpiresAt: exp}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.storeLocked(v.cacheKey("at_a"), res(now.Add(time.Hour)))
	v.storeLocked(v.cacheKey("at_b"), res(now.Add(time.Second))) // soonest
	v.storeLocked(v.cacheKey("at_c"), res(now.Add(time.Hour)))
	v.storeLocked(v.cacheKey("at_d"), res(now.Add(time.Hour)))
	_, ok := v.entries[v.cacheKey("at_b")]
	assert.False(t, ok, "the soonest-expiring entry was not the victim (size %d)", len(v.entries))
	assert.Len(t, v.entries, 3, "the soonest-expiring entry was not the victim (size %d)", len(v.entries))
	now = now.Add(2 * time.Minute) // everything expired
	v.storeLocked(v.cacheKey("at_e"), res(now.Add(time.Hour)))
	assert.Len(t, v.entries, 1, "expired entries kept: size %d, want 1", len(v.entries))
	v.storeLocked(v.cacheKey("at_f"), res(now)) // already expired: not stored
	_, ok = v.entries[v.cacheKey("at_f")]
	assert.False(t, ok, "an expired answer was cached")
	v.storeLocked(v.cacheKey("at_g"), &agenttrust.IntrospectionResult{Active: true}) // no expiry: not stored
	_, ok = v.entries[v.cacheKey("at_g")]
	assert.False(t, ok, "an answer without expiry was cached")
	for i := 0; i < 100; i++ {
		v.storeLocked(v.cacheKey(string(rune('a'+i%26))+"_"+string(rune('a'+i/26))), res(now.Add(time.Duration(i+1)*time.Minute)))
		require.LessOrEqual(t, len(v.entries), 3, "size %d after %d inserts, bound 3", len(v.entries), i+1)
	}
}
