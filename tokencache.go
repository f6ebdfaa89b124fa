package agenttrust

import (
	"context"
	"sync"
	"time"

	"github.com/agenttrustid/agenttrust-go/internal/flight"
	"github.com/agenttrustid/agenttrust-go/internal/strpack"
)

const (
	defaultCacheSize = 1024
	// cacheMinTTL: a cached token is reused only while its TTL is above this
	// (at least 31 whole seconds remain).
	cacheMinTTL = 30 * time.Second
)

// tokenCache is the Tokens.Issue cache: an unambiguous key,
// bounded size, concurrent misses collapsed into one request, copies out.
type tokenCache struct {
	now func() time.Time
	max int
	// fetch issues a token on a miss. It is bound once, in newClient: a
	// method value built per call would cost an allocation on every hit.
	fetch func(context.Context, TokenIssueParams) (*Token, error)

	// flights collapses concurrent misses of one key into one fetch,
	// detached from the callers' cancellation; each caller waits on its
	// own ctx. The fetch is one client call, bounded by the client timeout.
	flights flight.Group[string, *Token]

	mu      sync.Mutex
	entries map[string]*cacheEntry
	gen     uint64 // bumped by every eviction, so a racing fetch cannot resurrect

	obs *observer // reports lookups; nil when none
}

type cacheEntry struct {
	agentID string
	tok     Token
	// bearer is "Bearer " + tok.Token, the Authorization value of
	// TokenSource; tok.Token is its suffix.
	bearer string
}

func newTokenCache(max int, now func() time.Time) *tokenCache {
	c := &tokenCache{
		now:     now,
		max:     max,
		entries: make(map[string]*cacheEntry),
	}
	c.flights.WaitErr = networkErr
	return c
}

// appendKey encodes (agent, target, session, sorted scopes) injectively:
// every part is length-prefixed, so ["a:b"] and ["a","b"] differ, and the
// scopes are sorted with duplicates kept.
func appendKey(b []byte, p *TokenIssueParams) []byte {
	b = strpack.AppendString(b, p.AgentID)
	b = strpack.AppendString(b, p.Target)
	b = strpack.AppendString(b, p.SessionID)
	return strpack.AppendSet(b, p.Scopes)
}

// fresh reports whether a token expiring at exp may be served at now: its
// TTL in whole seconds, truncated like Token.TTL, is above 30 s. Comparing
// the raw duration would reuse a token with 30.5 s left, whose TTL is 30.
func fresh(exp, now time.Time) bool {
	return exp.Sub(now) >= cacheMinTTL+time.Second
}

// get returns a copy of a cached token, or fetches one, sharing the fetch
// with concurrent callers of the same key.
func (c *tokenCache) get(ctx context.Context, p TokenIssueParams) (*Token, error) {
	if ctx == nil {
		return nil, errNilContext()
	}
	var buf [128]byte
	kb := appendKey(buf[:0], &p)
	if e := c.lookup(kb); e != nil {
		// Entries are replaced, never modified, so the copy can be made
		// after unlocking: the lock is held for a lookup only.
		c.obs.cache(ctx, CacheToken, true)
		return copyToken(&e.tok), nil
	}
	c.obs.cache(ctx, CacheToken, false)
	tok, err := c.miss(ctx, string(kb), p)
	if err != nil {
		return nil, err
	}
	return copyToken(tok), nil
}

// lookup returns the fresh entry of key, or nil, dropping a stale one.
func (c *tokenCache) lookup(key []byte) *cacheEntry {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[string(key)]; ok {
		if fresh(e.tok.ExpiresAt, now) {
			return e
		}
		delete(c.entries, string(key))
	}
	return nil
}

// bearer returns "Bearer <token>" of the fresh entry of key, allocating
// nothing. Entries are replaced, never modified, so the entry can be read
// after unlocking; a stale one is left for get to drop.
func (c *tokenCache) bearer(key string) (string, bool) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && fresh(e.tok.ExpiresAt, now) {
		return e.bearer, true
	}
	return "", false
}

// miss joins or starts the fetch of key. Its result is shared by every
// caller of the fetch: they copy it. It is a function of its own so that
// the closures, which escape, cost nothing on a hit.
func (c *tokenCache) miss(ctx context.Context, key string, p TokenIssueParams) (*Token, error) {
	recheck := func() (*Token, bool) {
		if e := c.lookup([]byte(key)); e != nil {
			return &e.tok, true
		}
		return nil, false
	}
	return c.flights.Do(ctx, key, recheck, func(ctx context.Context) (*Token, error) {
		c.mu.Lock()
		gen := c.gen
		c.mu.Unlock()
		tok, err := c.fetch(ctx, p)
		if err == nil && !tok.ExpiresAt.IsZero() {
			c.mu.Lock()
			if c.gen == gen && fresh(tok.ExpiresAt, c.now()) {
				c.insertLocked(key, &cacheEntry{agentID: p.AgentID, tok: *copyToken(tok), bearer: "Bearer " + tok.Token})
			}
			c.mu.Unlock()
		}
		return tok, err
	})
}

// insertLocked adds e, first dropping expired entries and then, if still
// full, the entry that expires soonest.
func (c *tokenCache) insertLocked(key string, e *cacheEntry) {
	if _, exists := c.entries[key]; !exists && len(c.entries) >= c.max {
		now := c.now()
		for k, v := range c.entries {
			if !fresh(v.tok.ExpiresAt, now) {
				delete(c.entries, k)
			}
		}
		for len(c.entries) >= c.max {
			var victim string
			var soonest time.Time
			for k, v := range c.entries {
				if victim == "" || v.tok.ExpiresAt.Before(soonest) {
					victim, soonest = k, v.tok.ExpiresAt
				}
			}
			delete(c.entries, victim)
		}
	}
	c.entries[key] = e
}

func (c *tokenCache) evict(match func(*cacheEntry) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, v := range c.entries {
		if match(v) {
			delete(c.entries, k)
		}
	}
}

func (c *tokenCache) evictToken(token string) {
	c.evict(func(e *cacheEntry) bool { return e.tok.Token == token })
}

func (c *tokenCache) evictAgent(agentID string) {
	c.evict(func(e *cacheEntry) bool { return e.agentID == agentID })
}

func (c *tokenCache) clear() { c.evict(func(*cacheEntry) bool { return true }) }

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// copyToken returns a copy sharing nothing mutable with t. Scopes and
// Audience of up to four strings in all live in the same allocation as the
// Token.
func copyToken(t *Token) *Token {
	box := &struct {
		t   Token
		buf [4]string
	}{t: *t}
	rest := box.buf[:]
	box.t.Scopes, rest = strpack.Clone(rest, t.Scopes)
	box.t.Audience, _ = strpack.Clone(rest, t.Audience)
	return &box.t
}
