package agenttrust

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"time"
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

	mu       sync.Mutex
	entries  map[string]*cacheEntry
	inflight map[string]*flight
	gen      uint64 // bumped by every eviction, so a racing fetch cannot resurrect

	obs *observer // reports lookups; nil when none
}

type cacheEntry struct {
	agentID string
	tok     Token
}

type flight struct {
	done chan struct{}
	tok  *Token
	err  error
}

func newTokenCache(max int, now func() time.Time) *tokenCache {
	return &tokenCache{
		now:      now,
		max:      max,
		entries:  make(map[string]*cacheEntry),
		inflight: make(map[string]*flight),
	}
}

// appendKey encodes (agent, target, session, sorted scopes) injectively:
// every part is length-prefixed, so ["a:b"] and ["a","b"] differ, and the
// scopes are sorted with duplicates kept.
func appendKey(b []byte, p *TokenIssueParams) []byte {
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(p.AgentID)
	str(p.Target)
	str(p.SessionID)
	var arr [8]string
	scopes := append(arr[:0], p.Scopes...)
	slices.Sort(scopes)
	b = binary.AppendUvarint(b, uint64(len(scopes)))
	for _, s := range scopes {
		str(s)
	}
	return b
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

	now := c.now()
	c.mu.Lock()
	if e, ok := c.entries[string(kb)]; ok {
		if fresh(e.tok.ExpiresAt, now) {
			// Entries are replaced, never modified, so the copy can be made
			// after unlocking: the lock is held for a lookup only.
			tok := e.tok
			c.mu.Unlock()
			c.obs.cache(ctx, CacheToken, true)
			return copyToken(&tok), nil
		}
		delete(c.entries, string(kb))
	}
	key := string(kb)
	f, ok := c.inflight[key]
	if !ok {
		f = &flight{done: make(chan struct{})}
		c.inflight[key] = f
		gen := c.gen
		// The shared fetch must not die with the first caller's ctx: it runs
		// detached from cancellation, bounded by the client timeout.
		go c.run(context.WithoutCancel(ctx), key, gen, p, f)
	}
	c.mu.Unlock()
	c.obs.cache(ctx, CacheToken, false)

	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return copyToken(f.tok), nil
	case <-ctx.Done():
		return nil, networkErr(ctx.Err())
	}
}

func (c *tokenCache) run(ctx context.Context, key string, gen uint64, p TokenIssueParams, f *flight) {
	tok, err := c.fetch(ctx, p)
	c.mu.Lock()
	delete(c.inflight, key)
	if err == nil && c.gen == gen && !tok.ExpiresAt.IsZero() && fresh(tok.ExpiresAt, c.now()) {
		c.insertLocked(key, &cacheEntry{agentID: p.AgentID, tok: *copyToken(tok)})
	}
	c.mu.Unlock()
	f.tok, f.err = tok, err
	close(f.done)
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
// Audience of up to four strings live in the same allocation as the Token.
func copyToken(t *Token) *Token {
	ns, na := len(t.Scopes), len(t.Audience)
	if ns+na <= 4 {
		box := &struct {
			t   Token
			buf [4]string
		}{t: *t}
		copy(box.buf[:], t.Scopes)
		copy(box.buf[ns:], t.Audience)
		box.t.Scopes = nilIfNil(t.Scopes, box.buf[:ns:ns])
		box.t.Audience = nilIfNil(t.Audience, box.buf[ns:ns+na:ns+na])
		return &box.t
	}
	c := *t
	c.Scopes = slices.Clone(t.Scopes)
	c.Audience = slices.Clone(t.Audience)
	return &c
}

func nilIfNil(orig, s []string) []string {
	if orig == nil {
		return nil
	}
	return s
}
