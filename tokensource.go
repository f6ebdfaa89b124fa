package agenttrust

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
)

const bearerPrefix = "Bearer "

// TokenSource hands out one agent's token for one target, scope set and
// session, through the client's Tokens.Issue cache: it is what an agent
// presents to a tool provider that checks tokens (with package tokenauth,
// say). A new token is issued when the cached one has 30 s or less left, or
// was revoked through this client; concurrent callers share the issue
// request, each waiting on its own context.
//
// A cache hit costs a map lookup under a lock and allocates nothing: the
// cache key is built once, by Tokens.NewSource.
//
// A TokenSource is safe for concurrent use. Printing or logging it never
// shows a token.
type TokenSource struct {
	client *Client
	p      TokenIssueParams
	key    string
}

// NewSource returns a TokenSource issuing tokens with p, whose Scopes are
// copied. A missing AgentID, or NoCache set (a source always uses the
// cache), is a *ValidationError; nothing is sent until the first use.
func (s *TokensService) NewSource(p TokenIssueParams) (*TokenSource, error) {
	if p.AgentID == "" {
		return nil, validationErr("token source: missing required agent_id")
	}
	if p.NoCache {
		return nil, validationErr("token source: NoCache is not supported: a source issues through the cache")
	}
	if p.Scopes != nil {
		p.Scopes = append(make([]string, 0, len(p.Scopes)), p.Scopes...)
	}
	return &TokenSource{client: s.client, p: p, key: string(appendKey(nil, &p))}, nil
}

// Token returns the token to present, issuing one when the cache has none
// fresh. When ctx ends while an issue request is in progress, Token returns
// at once with a *NetworkError wrapping ctx's error; the request goes on
// for the other callers. Errors are those of Tokens.Issue.
func (ts *TokenSource) Token(ctx context.Context) (string, error) {
	b, err := ts.bearer(ctx)
	if err != nil {
		return "", err
	}
	return b[len(bearerPrefix):], nil
}

// bearer returns "Bearer <token>". On a hit it returns the string stored in
// the cache entry, so nothing is allocated.
func (ts *TokenSource) bearer(ctx context.Context) (string, error) {
	if ctx == nil {
		return "", errNilContext()
	}
	if b, ok := ts.client.tokens.bearer(ts.key); ok {
		ts.client.tokens.obs.cache(ctx, CacheToken, true)
		return b, nil
	}
	ts.client.tokens.obs.cache(ctx, CacheToken, false)
	tok, err := ts.client.tokens.miss(ctx, ts.key, ts.p)
	if err != nil {
		return "", err
	}
	return bearerPrefix + tok.Token, nil
}

// Transport returns an http.RoundTripper that sends each request through
// base (http.DefaultTransport when nil) with "Authorization: Bearer
// <token>" from ts, replacing any Authorization header of the request. The
// caller's request is never modified: the transport sends a copy with its
// own header map.
//
// A redirect to another host is followed without the token, like
// http.Client drops credentials it set itself. A 401 answer drops the token
// from the cache, so that the next request presents a new one; the request
// itself is not retried. When no token can be had, the request is not sent
// and the error (a *NetworkError, *AuthenticationError, ...) reaches the
// caller wrapped in the *url.Error of http.Client.
//
// Use the returned transport in an http.Client for the tool provider:
//
//	httpClient := &http.Client{Transport: src.Transport(nil)}
func (ts *TokenSource) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &tokenTransport{src: ts, base: base}
}

// String describes the source: agent, target and scopes, no token.
func (ts *TokenSource) String() string {
	return joinFields("TokenSource", "AgentID", strconv.Quote(ts.p.AgentID), "Target", strconv.Quote(ts.p.Target),
		"Scopes", fmt.Sprintf("%q", ts.p.Scopes))
}

// GoString is String.
func (ts *TokenSource) GoString() string { return ts.String() }

// Format prints String for every verb.
func (ts *TokenSource) Format(f fmt.State, verb rune) { formatRedacted(f, verb, ts, ts) }

// LogValue describes the source to log/slog without a token.
func (ts *TokenSource) LogValue() slog.Value {
	return slog.GroupValue(slog.String("agent_id", ts.p.AgentID), slog.String("target", ts.p.Target),
		slog.Any("scopes", ts.p.Scopes))
}

type tokenTransport struct {
	src  *TokenSource
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if prev := req.Response; prev != nil && prev.Request != nil && prev.Request.URL.Host != req.URL.Host {
		return t.base.RoundTrip(req) // a redirect elsewhere: no token
	}
	bearer, err := t.src.bearer(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, err
	}
	r := new(http.Request)
	*r = *req
	r.Header = headerWith(req.Header, "Authorization", bearer)
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusUnauthorized {
		t.src.client.tokens.evictToken(bearer[len(bearerPrefix):])
	}
	return resp, err
}

// headerWith returns a deep copy of h with key set to the single value v.
// All values share one new backing array.
func headerWith(h http.Header, key, v string) http.Header {
	n := 1
	for _, vv := range h {
		n += len(vv)
	}
	vals := make([]string, n)
	out := make(http.Header, len(h)+1)
	for k, vv := range h {
		if k == key {
			continue
		}
		if vv == nil {
			out[k] = nil
			continue
		}
		c := copy(vals, vv)
		out[k] = vals[:c:c]
		vals = vals[c:]
	}
	vals[0] = v
	out[key] = vals[:1:1]
	return out
}
