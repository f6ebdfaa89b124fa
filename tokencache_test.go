package agenttrust

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// issuer is an issue endpoint that mints a new token per request, expiring
// ttl after the fake clock's now (or without expiry when ttl is 0).
type issuer struct {
	clock *fakeClock
	ttl   time.Duration
	n     atomic.Int32
}

func (is *issuer) handle(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	n := is.n.Add(1)
	tok := map[string]any{"token": fmt.Sprintf("at_tok%d_secret", n), "agent_id": body["agent_id"],
		"scope": body["scopes"], "token_id": fmt.Sprintf("tid-%d", n)}
	if is.ttl != 0 {
		tok["expires_at"] = is.clock.Now().Add(is.ttl).Format(time.RFC3339Nano)
	}
	json.NewEncoder(w).Encode(tok)
}

func newCacheRig(t *testing.T, ttl time.Duration, opts ...Option) (*Client, *recServer, *issuer, *fakeClock) {
	clk := newFakeClock(t0)
	is := &issuer{clock: clk, ttl: ttl}
	srv := newRecServer(t, is.handle)
	c := newTestClient(t, srv.URL, append([]Option{withNow(clk.Now)}, opts...)...)
	return c, srv, is, clk
}

func issue(t *testing.T, c *Client, p TokenIssueParams) *Token {
	t.Helper()
	tok, err := c.Tokens.Issue(ctxT(t), p)
	require.NoError(t, err, "Issue(%+v)", p)
	return tok
}

func TestCacheHit(t *testing.T) {
	c, srv, _, _ := newCacheRig(t, 5*time.Minute)
	a := issue(t, c, TokenIssueParams{AgentID: "a1", Scopes: []string{"r", "w"}, TTLSeconds: 60})
	b := issue(t, c, TokenIssueParams{AgentID: "a1", Scopes: []string{"w", "r"}, TTLSeconds: 300}) // order and TTL irrelevant
	require.Equal(t, 1, srv.count(), "%d requests; tokens %s %s", srv.count(), a, b)
	require.Equal(t, b.Token, a.Token, "%d requests; tokens %s %s", srv.count(), a, b)
	assert.NotSame(t, a, b, "hit returned the same pointer")
}

func TestCacheNearExpiry(t *testing.T) {
	c, srv, _, clk := newCacheRig(t, 5*time.Minute)
	p := TokenIssueParams{AgentID: "a1"}
	first := issue(t, c, p)
	clk.Advance(5*time.Minute - 31*time.Second) // 31 s left: TTL 31 > 30, reused
	require.Equal(t, first.Token, issue(t, c, p).Token, "31 s left: re-issued")
	require.Equal(t, 1, srv.count(), "31 s left: re-issued")
	clk.Advance(500 * time.Millisecond) // 30.5 s left: TTL() is 30, not > 30
	second := issue(t, c, p)
	require.NotEqual(t, first.Token, second.Token, "30.5 s left: reused (requests %d)", srv.count())
	require.Equal(t, 2, srv.count(), "30.5 s left: reused (requests %d)", srv.count())
	clk.Advance(10 * time.Minute) // the new one expired outright
	require.NotEqual(t, second.Token, issue(t, c, p).Token, "expired token reused")
	require.Equal(t, 3, srv.count(), "expired token reused")
}

func TestCacheShortLivedNotCached(t *testing.T) {
	c, srv, _, _ := newCacheRig(t, 30*time.Second)
	issue(t, c, TokenIssueParams{AgentID: "a1"})
	issue(t, c, TokenIssueParams{AgentID: "a1"})
	assert.Equal(t, 2, srv.count(), "a 30 s token was reused: %d requests", srv.count())
}

func TestCacheKeyParts(t *testing.T) {
	c, srv, _, _ := newCacheRig(t, 5*time.Minute)
	distinct := []TokenIssueParams{
		{AgentID: "a1", Scopes: []string{"a:b"}},
		{AgentID: "a1", Scopes: []string{"a", "b"}},
		{AgentID: "a1", Scopes: []string{"a", "a", "b"}},
		{AgentID: "a1"},
		{AgentID: "a1", Scopes: []string{""}},
		{AgentID: "a1", Target: "svc"},
		{AgentID: "a1", Target: "None"},
		{AgentID: "a1", SessionID: "svc"},
		{AgentID: "a1:", Scopes: nil},
		{AgentID: "a2"},
		{AgentID: "a1", Scopes: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}},
	}
	tokens := map[string]int{}
	for i, p := range distinct {
		tokens[issue(t, c, p).Token] = i
	}
	require.Len(t, tokens, len(distinct), "%d distinct tokens for %d keys", len(tokens), len(distinct))
	require.Equal(t, len(distinct), srv.count(), "%d distinct tokens for %d keys", len(tokens), len(distinct))
	// Every one is now a hit, whatever the scope order.
	for i, p := range distinct {
		p.Scopes = append([]string(nil), p.Scopes...)
		for l, r := 0, len(p.Scopes)-1; l < r; l, r = l+1, r-1 {
			p.Scopes[l], p.Scopes[r] = p.Scopes[r], p.Scopes[l]
		}
		got := tokens[issue(t, c, p).Token]
		assert.Equal(t, i, got, "key %d hit the entry of key %d", i, got)
	}
	assert.Equal(t, len(distinct), srv.count(), "%d requests after all hits", srv.count())
	assert.Equal(t, len(distinct), c.tokens.len(), "cache holds %d entries", c.tokens.len())
}

func TestCacheDoesNotReorderCallerScopes(t *testing.T) {
	c, srv, _, _ := newCacheRig(t, 5*time.Minute)
	scopes := []string{"w", "r", "a"}
	issue(t, c, TokenIssueParams{AgentID: "a1", Scopes: scopes})
	assert.Equal(t, "w", scopes[0], "caller's scopes reordered: %v", scopes)
	assert.Equal(t, "r", scopes[1], "caller's scopes reordered: %v", scopes)
	assert.Equal(t, "a", scopes[2], "caller's scopes reordered: %v", scopes)
	assert.JSONEq(t, `{"agent_id":"a1","scopes":["w","r","a"],"ttl":300}`, string(srv.only(t).Body))
}

func TestCacheNoCache(t *testing.T) {
	c, srv, _, _ := newCacheRig(t, 5*time.Minute)
	p := TokenIssueParams{AgentID: "a1", NoCache: true}
	a, b := issue(t, c, p), issue(t, c, p)
	require.Equal(t, 2, srv.count(), "NoCache: %d requests, %d cached", srv.count(), c.tokens.len())
	require.NotEqual(t, b.Token, a.Token, "NoCache: %d requests, %d cached", srv.count(), c.tokens.len())
	require.Equal(t, 0, c.tokens.len(), "NoCache: %d requests, %d cached", srv.count(), c.tokens.len())
	cached := issue(t, c, TokenIssueParams{AgentID: "a1"})
	require.Equal(t, 3, srv.count(), "NoCache wrote the cache")
	got := issue(t, c, p)
	assert.NotEqual(t, cached.Token, got.Token, "NoCache read the cache")
	assert.Equal(t, 4, srv.count(), "NoCache read the cache")
}

func TestCacheNoExpiryNotCached(t *testing.T) {
	c, srv, _, _ := newCacheRig(t, 0)
	issue(t, c, TokenIssueParams{AgentID: "a1"})
	tok := issue(t, c, TokenIssueParams{AgentID: "a1"})
	assert.Equal(t, 2, srv.count(), "token without expires_at cached: %d requests", srv.count())
	assert.Equal(t, 0, c.tokens.len(), "token without expires_at cached: %d requests", srv.count())
	assert.False(t, tok.IsExpired(), "unknown expiry: expired %v ttl %v", tok.IsExpired(), tok.TTL())
	assert.EqualValues(t, 0, tok.TTL(), "unknown expiry: expired %v ttl %v", tok.IsExpired(), tok.TTL())
	// A malformed expiry counts as none.
	srv.setHandler(reply(200, `{"token":"at_m","expires_at":"soon"}`))
	issue(t, c, TokenIssueParams{AgentID: "a2"})
	issue(t, c, TokenIssueParams{AgentID: "a2"})
	assert.Equal(t, 4, srv.count(), "malformed expiry cached")
}

func TestCacheErrorsNotCached(t *testing.T) {
	c, srv, is, _ := newCacheRig(t, 5*time.Minute)
	p := TokenIssueParams{AgentID: "a1"}
	good := issue(t, c, p)
	srv.setHandler(reply(500, `{"error":"down"}`))
	other := TokenIssueParams{AgentID: "a2"}
	for i := 0; i < 2; i++ {
		_, err := c.Tokens.Issue(ctxT(t), other)
		require.Error(t, err, "no error")
	}
	assert.Equal(t, 3, srv.count(), "error cached: %d requests", srv.count())
	assert.Equal(t, good.Token, issue(t, c, p).Token, "a failed issue disturbed other entries")
	srv.setHandler(is.handle)
	assert.NotEmpty(t, issue(t, c, other).Token, "recovery after error")
	assert.Equal(t, 4, srv.count(), "recovery after error")
}

func TestCacheCollapsesConcurrentMisses(t *testing.T) {
	const n = 100
	clk := newFakeClock(t0)
	is := &issuer{clock: clk, ttl: 5 * time.Minute}
	var c *Client
	p := TokenIssueParams{AgentID: "a1", Scopes: []string{"r"}}
	key := string(appendKey(nil, &p))
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		// Answer only once every caller is waiting on the shared flight.
		assert.Eventually(t, func() bool { return c.tokens.flights.Waiters(key) == n }, 5*time.Second, time.Millisecond,
			"callers waiting on the flight")
		is.handle(w, r)
	})
	c = newTestClient(t, srv.URL, withNow(clk.Now))
	var wg sync.WaitGroup
	toks := make([]*Token, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			toks[i], errs[i] = c.Tokens.Issue(context.Background(), p)
		}(i)
	}
	wg.Wait()
	require.Equal(t, 1, srv.count(), "%d issue requests for %d concurrent misses", srv.count(), n)
	for i := range toks {
		require.NoError(t, errs[i], "caller %d: %v", i, toks[i])
		require.Equal(t, toks[0].Token, toks[i].Token, "caller %d: %v %v", i, toks[i], errs[i])
		if i > 0 {
			require.NotSame(t, &toks[0].Scopes[0], &toks[i].Scopes[0], "callers share a Scopes array")
		}
	}
}

func TestCacheWaiterCancel(t *testing.T) {
	clk := newFakeClock(t0)
	is := &issuer{clock: clk, ttl: 5 * time.Minute}
	release := make(chan struct{})
	arrived := make(chan struct{})
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		is.handle(w, r)
	})
	open := releaser(t, release)
	c := newTestClient(t, srv.URL, withNow(clk.Now))
	p := TokenIssueParams{AgentID: "a1"}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var cancelledErr, otherErr error
	var other *Token
	wg.Add(2)
	go func() { defer wg.Done(); _, cancelledErr = c.Tokens.Issue(ctx, p) }() // starts the flight
	<-arrived
	go func() { defer wg.Done(); other, otherErr = c.Tokens.Issue(context.Background(), p) }()
	key := string(appendKey(nil, &p))
	require.Eventually(t, func() bool { return c.tokens.flights.Waiters(key) == 2 }, 5*time.Second, time.Millisecond,
		"the second caller joins the flight")
	cancel()
	require.Eventually(t, func() bool { return c.tokens.flights.Waiters(key) == 1 }, 5*time.Second, time.Millisecond,
		"the cancelled caller leaves the flight")
	open()
	wg.Wait()
	wantNetwork(t, cancelledErr)
	assert.ErrorIs(t, cancelledErr, context.Canceled, "waiter error %v does not wrap Canceled", cancelledErr)
	require.NoError(t, otherErr, "the other waiter: %v", other)
	require.NotEmpty(t, other.Token, "the other waiter: %v %v", other, otherErr)
	assert.Equal(t, 1, srv.count(), "%d requests", srv.count())
	// The shared fetch was not cancelled with the first caller: it was cached.
	assert.Equal(t, other.Token, issue(t, c, p).Token, "shared result not cached")
	assert.Equal(t, 1, srv.count(), "shared result not cached")
}

func TestCacheWaitersShareError(t *testing.T) {
	release := make(chan struct{})
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.WriteHeader(403)
		w.Write([]byte(`{"error":"no"}`))
	})
	open := releaser(t, release)
	c := newTestClient(t, srv.URL)
	p := TokenIssueParams{AgentID: "a"}
	key := string(appendKey(nil, &p))
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = c.Tokens.Issue(context.Background(), p)
		}(i)
	}
	require.Eventually(t, func() bool { return c.tokens.flights.Waiters(key) == len(errs) }, 5*time.Second, time.Millisecond,
		"every caller waits on the flight")
	open()
	wg.Wait()
	for _, err := range errs {
		assert.ErrorIs(t, err, ErrAuthorization, "waiter got %v", err)
	}
	assert.Equal(t, 1, srv.count(), "%d requests", srv.count())
}

func TestCacheEvictionByRevoke(t *testing.T) {
	c, srv, is, _ := newCacheRig(t, 5*time.Minute)
	route := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/agent-tokens/issue":
			is.handle(w, r)
		default:
			w.WriteHeader(204)
		}
	}
	srv.setHandler(route)
	a1 := issue(t, c, TokenIssueParams{AgentID: "a1"})
	a1s := issue(t, c, TokenIssueParams{AgentID: "a1", Scopes: []string{"x"}})
	a2 := issue(t, c, TokenIssueParams{AgentID: "a2"})

	// A failed revoke leaves the cache alone.
	srv.setHandler(reply(500, ""))
	require.Error(t, c.Tokens.Revoke(ctxT(t), a1.Token, ""), "no error")
	require.Error(t, c.Agents.Revoke(ctxT(t), "a2", ""), "no error")
	require.Equal(t, 3, c.tokens.len(), "failed revoke evicted: %d entries", c.tokens.len())
	srv.setHandler(route)
	require.NoError(t, c.Tokens.Revoke(ctxT(t), a1.Token, ""))
	require.Equal(t, 2, c.tokens.len(), "token revoke: %d entries", c.tokens.len())
	assert.NotEqual(t, a1.Token, issue(t, c, TokenIssueParams{AgentID: "a1"}).Token, "revoked token served from cache")
	require.NoError(t, c.Agents.Revoke(ctxT(t), "a1", ""))
	assert.NotEqual(t, a1s.Token, issue(t, c, TokenIssueParams{AgentID: "a1", Scopes: []string{"x"}}).Token, "revoked agent's token served from cache")
	assert.Equal(t, a2.Token, issue(t, c, TokenIssueParams{AgentID: "a2"}).Token, "another agent's token evicted")
	c.Tokens.ClearCache()
	assert.Equal(t, 0, c.tokens.len(), "ClearCache left %d", c.tokens.len())
	issue(t, c, TokenIssueParams{AgentID: "a2"})
	c.SetAPIKey("sk_live_other")
	assert.Equal(t, 0, c.tokens.len(), "SetAPIKey left %d entries", c.tokens.len())
}

func TestCacheRevokeDuringFlightDoesNotResurrect(t *testing.T) {
	clk := newFakeClock(t0)
	is := &issuer{clock: clk, ttl: 5 * time.Minute}
	release, arrived := make(chan struct{}), make(chan struct{})
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		is.handle(w, r)
	})
	c := newTestClient(t, srv.URL, withNow(clk.Now))
	done := make(chan struct{})
	go func() { defer close(done); c.Tokens.Issue(context.Background(), TokenIssueParams{AgentID: "a1"}) }()
	<-arrived
	c.SetAPIKey("sk_new") // the token being fetched belongs to the old key
	close(release)
	<-done
	assert.Equal(t, 0, c.tokens.len(), "a fetch that raced an eviction was cached")
}

func TestCacheBoundedEvictsSoonest(t *testing.T) {
	clk := newFakeClock(t0)
	ttls := map[string]time.Duration{"a": 10 * time.Minute, "b": 2 * time.Minute, "c": 5 * time.Minute, "d": 7 * time.Minute}
	srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		id := body["agent_id"].(string)
		fmt.Fprintf(w, `{"token":"at_%s","expires_at":%q}`, id, clk.Now().Add(ttls[id]).Format(time.RFC3339))
	})
	c := newTestClient(t, srv.URL, withNow(clk.Now), WithTokenCacheSize(3))
	for _, id := range []string{"a", "b", "c", "d"} {
		issue(t, c, TokenIssueParams{AgentID: id})
	}
	require.Equal(t, 3, c.tokens.len(), "%d entries, max 3", c.tokens.len())
	srv.clear()
	for _, id := range []string{"a", "c", "d"} {
		issue(t, c, TokenIssueParams{AgentID: id})
	}
	assert.Equal(t, 0, srv.count(), "a longer-lived entry was evicted")
	issue(t, c, TokenIssueParams{AgentID: "b"})
	assert.Equal(t, 1, srv.count(), "the soonest-expiring entry was kept")
	// Expired entries go first: after 6 minutes c (5 min) is dead, d (7 min)
	// has 60 s left, a has 4 min; inserting "e" drops c, not the soonest live.
	ttls["e"] = time.Hour
	clk.Advance(6 * time.Minute)
	issue(t, c, TokenIssueParams{AgentID: "e"})
	srv.clear()
	issue(t, c, TokenIssueParams{AgentID: "d"})
	issue(t, c, TokenIssueParams{AgentID: "a"})
	assert.Equal(t, 0, srv.count(), "live entries evicted before expired ones (%d re-issued)", srv.count())
}

func TestCacheCopiesAreIndependent(t *testing.T) {
	for _, scopes := range [][]string{{"r", "w"}, {"1", "2", "3", "4", "5"}} {
		srv := newRecServer(t, func(w http.ResponseWriter, r *http.Request) {
			b, _ := json.Marshal(scopes)
			fmt.Fprintf(w, `{"token":"at_x","scopes":%s,"audience":["svc"],"expires_at":"2099-01-01T00:00:00Z"}`, b)
		})
		c := newTestClient(t, srv.URL)
		a := issue(t, c, TokenIssueParams{AgentID: "a1"})
		a.Scopes[0] = "MUTATED"
		a.Audience[0] = "MUTATED"
		a.Scopes = append(a.Scopes, "more")
		b := issue(t, c, TokenIssueParams{AgentID: "a1"})
		assert.Equal(t, scopes[0], b.Scopes[0], "mutating a returned token changed the cache: %v %v", b.Scopes, b.Audience)
		require.Len(t, b.Scopes, len(scopes), "mutating a returned token changed the cache: %v %v", b.Scopes, b.Audience)
		assert.Equal(t, "svc", b.Audience[0], "mutating a returned token changed the cache: %v %v", b.Scopes, b.Audience)
		b.Scopes = append(b.Scopes, "x")
		b2 := issue(t, c, TokenIssueParams{AgentID: "a1"})
		assert.Len(t, b2.Scopes, len(scopes), "append leaked into the cache: %v", b2.Scopes)
		assert.Equal(t, 1, srv.count(), "%d requests", srv.count())
	}
}
