package agenttrust

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
)

// TokensService issues, introspects and revokes agent tokens (auth service).
// Issue keeps a per-client cache.
type TokensService service

// TokenIssueParams are the arguments of Tokens.Issue.
type TokenIssueParams struct {
	// AgentID is the agent the token is for.
	AgentID string
	// Scopes are sent in the caller's order; nil sends [].
	Scopes []string
	// Target is never sent; it only separates cache entries.
	Target string
	// TTLSeconds is the requested lifetime; 0 means 300.
	TTLSeconds int
	// SessionID is sent when non-empty.
	SessionID string
	// NoCache bypasses the cache: no read, no write, no collapsing.
	NoCache bool
}

type tokenIssueBody struct {
	AgentID   string   `json:"agent_id"`
	Scopes    []string `json:"scopes"`
	TTL       int      `json:"ttl"`
	SessionID string   `json:"session_id,omitempty"`
}

// Issue returns a token for the agent: POST /api/v1/agent-tokens/issue.
//
// Unless NoCache is set, a cached token for the same agent, scope set,
// target and session is returned without a network call while more than 30 s
// of it remain, and concurrent misses for one key share one request. Every
// call returns its own copy. Tokens without an expiry are not cached. A call
// with request options bypasses the cache as NoCache does, since a cached
// token was not issued under them.
func (s *TokensService) Issue(ctx context.Context, p TokenIssueParams, opts ...RequestOption) (*Token, error) {
	if ctx == nil {
		// Checked here, before the cache takes its lock: a nil ctx must be
		// a validation error, never a panic under that lock.
		return nil, errNilContext()
	}
	if p.NoCache || len(opts) > 0 {
		return s.send(ctx, p, opts)
	}
	return s.client.tokens.get(ctx, p)
}

// issue is the token cache's fetch: the request a miss sends for every
// caller waiting on it, with the client's settings.
func (s *TokensService) issue(ctx context.Context, p TokenIssueParams) (*Token, error) {
	return s.send(ctx, p, nil)
}

func (s *TokensService) send(ctx context.Context, p TokenIssueParams, opts []RequestOption) (*Token, error) {
	ttl := p.TTLSeconds
	if ttl == 0 {
		ttl = 300
	}
	body := &tokenIssueBody{AgentID: p.AgentID, Scopes: nonNil(p.Scopes), TTL: ttl, SessionID: p.SessionID}
	resp, err := s.client.do(ctx, &request{method: http.MethodPost, base: baseAuth, path: "/api/v1/agent-tokens/issue", body: body}, opts)
	if err != nil {
		return nil, err
	}
	t := &Token{now: s.client.tokens.now} // the client's clock, also for a missing issued_at
	if err := decodeObject(resp, t); err != nil {
		return nil, err
	}
	return t, nil
}

// TokenIntrospectParams are the arguments of Tokens.Introspect. Printing or
// logging them never reveals the token.
type TokenIntrospectParams struct {
	// Token is the token to inspect.
	Token string
	// Target is the service the token is presented to; "" sends null.
	Target string
	// RequiredScopes must all be granted; nil sends [].
	RequiredScopes []string
}

// String describes the params without the token.
func (p TokenIntrospectParams) String() string {
	return joinFields("TokenIntrospectParams", "Token", redactedToken(p.Token), "Target", strconv.Quote(p.Target),
		"RequiredScopes", fmt.Sprintf("%q", p.RequiredScopes))
}

// GoString is String, so that %#v hides the token too.
func (p TokenIntrospectParams) GoString() string { return p.String() }

// Format prints String for every verb.
func (p TokenIntrospectParams) Format(f fmt.State, verb rune) { formatRedacted(f, verb, p, p) }

// LogValue hides the token from log/slog.
func (p TokenIntrospectParams) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token", redactedToken(p.Token)), slog.String("target", p.Target),
		slog.Any("required_scopes", p.RequiredScopes))
}

type tokenIntrospectBody struct {
	Token          string   `json:"token"`
	Target         *string  `json:"target"`
	RequiredScopes []string `json:"required_scopes"`
}

// Introspect asks whether a token is active for the target and scopes:
// POST /api/v1/agent-tokens/introspect. An inactive token is a result with
// Active false and a Reasoning, not an error.
func (s *TokensService) Introspect(ctx context.Context, p TokenIntrospectParams, opts ...RequestOption) (*IntrospectionResult, error) {
	body := &tokenIntrospectBody{Token: p.Token, RequiredScopes: nonNil(p.RequiredScopes)}
	if p.Target != "" {
		body.Target = &p.Target
	}
	return call[IntrospectionResult](ctx, s.client, &request{method: http.MethodPost, base: baseAuth, path: "/api/v1/agent-tokens/introspect",
		body: body, idempotent: true, secrets: []string{p.Token}}, "", opts)
}

// Verify is Introspect under its old name.
//
// Deprecated: use Introspect.
func (s *TokensService) Verify(ctx context.Context, p TokenIntrospectParams, opts ...RequestOption) (*VerificationResult, error) {
	return s.Introspect(ctx, p, opts...)
}

// Revoke revokes a token: POST /api/v1/agent-tokens/revoke. An empty reason
// sends "manual_revocation". On success, cached copies of the token are
// evicted; on error the cache is untouched.
func (s *TokensService) Revoke(ctx context.Context, token, reason string, opts ...RequestOption) error {
	body := struct {
		Token  string `json:"token"`
		Reason string `json:"reason"`
	}{token, orDefault(reason, "manual_revocation")}
	_, err := s.client.do(ctx, &request{method: http.MethodPost, base: baseAuth, path: "/api/v1/agent-tokens/revoke",
		body: body, secrets: []string{token}}, opts)
	if err != nil {
		return err
	}
	s.client.tokens.evictToken(token)
	return nil
}

// ClearCache empties the token cache.
func (s *TokensService) ClearCache() { s.client.tokens.clear() }
