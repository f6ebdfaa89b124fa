// Package agenttrustmcp protects MCP servers built with the official Go SDK
// (github.com/modelcontextprotocol/go-sdk) with AgentTrust tokens.
//
// Import it under its package name, since the SDK's own package is "mcp":
//
//	import agenttrustmcp "github.com/agenttrustid/agenttrust-go/integrations/mcp"
//
// Verifier turns AgentTrust token introspection into an auth.TokenVerifier
// for the SDK's auth.RequireBearerToken middleware, so that a streamable
// HTTP server is protected in one line:
//
//	handler := auth.RequireBearerToken(agenttrustmcp.Verifier(client, agenttrust.WithTarget("files-mcp")),
//		&auth.RequireBearerTokenOptions{Scopes: []string{"tools:call"}})(mcp.NewStreamableHTTPHandler(getServer, nil))
//
// or, with the same meaning, agenttrustmcp.RequireToken(client, []string{"tools:call"}, ...).
//
// Outcomes, as the SDK's middleware turns them into HTTP answers:
//
//   - an active token with the required scopes: the request proceeds, and
//     tools find the token's details in req.Extra.TokenInfo (UserID is the
//     agent id; Introspection returns the full result);
//   - a malformed request (a token that is not an RFC 6750 bearer token, or
//     more than one Authorization header): an error matching auth.ErrOAuth,
//     400;
//   - an inactive token (unknown, expired, revoked, wrong target, or refused
//     by the gateway for any other reason): auth.ErrInvalidToken, 401,
//     whatever the gateway's reasoning says;
//   - an active token without a scope listed in RequireBearerTokenOptions.Scopes:
//     403, decided by the SDK from TokenInfo.Scopes, which are the scopes the
//     gateway reports;
//   - the gateway unreachable or failing: an error that is not
//     auth.ErrInvalidToken, which the SDK answers with 500. It is never an
//     allow.
//
// The SDK writes the error's text into the answer, so that text is fixed
// ("invalid token", ...): the gateway's reasoning, which an unauthenticated
// caller must not see, stays in the wrapped *agenttrust.TokenRejectedError
// for the server's own logs.
//
// Scopes belong in RequireBearerTokenOptions.Scopes. Scopes given to the
// verifier itself with agenttrust.WithRequiredScopes are also enforced, by
// the gateway, but a token lacking one is then reported as invalid (401),
// because a TokenVerifier cannot ask the SDK for a 403.
//
// The verifier caches positive answers for a few seconds (see
// agenttrust.TokenVerifier for the trade-off between revocation latency and
// gateway load; agenttrust.WithCache(0) disables it).
package agenttrustmcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

// Keys of auth.TokenInfo.Extra set by the verifier.
const (
	// ExtraOrgID holds the token's organization id (a string).
	ExtraOrgID = "org_id"
	// ExtraAgentID holds the agent id (a string), also in TokenInfo.UserID.
	ExtraAgentID = "agent_id"
	// ExtraIntrospection holds the whole *agenttrust.IntrospectionResult.
	ExtraIntrospection = "agenttrust_introspection"
)

// ErrGatewayUnavailable matches the error a verifier returns when the
// gateway could not answer; the underlying SDK error is wrapped too.
var ErrGatewayUnavailable = errors.New("agenttrustmcp: token introspection unavailable")

// NewVerifier returns an auth.TokenVerifier that introspects tokens with
// client, configured like agenttrust.NewTokenVerifier (target, cache,
// clock, logger). A nil client or an invalid option is an error.
func NewVerifier(client *agenttrust.Client, opts ...agenttrust.MiddlewareOption) (auth.TokenVerifier, error) {
	v, err := agenttrust.NewTokenVerifier(client, opts...)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, token string, req *http.Request) (*auth.TokenInfo, error) {
		if req != nil && len(req.Header.Values("Authorization")) > 1 {
			// The SDK reads only the first header; RFC 6750 makes a
			// repeated one a malformed request.
			return nil, &malformed{"more than one Authorization header", nil}
		}
		res, err := v.Verify(ctx, token)
		if err != nil {
			return nil, mapError(err)
		}
		return tokenInfo(res), nil
	}, nil
}

// Verifier is NewVerifier for use in one expression. An invalid
// configuration makes every verification fail with the configuration error
// (a 500 from the SDK's middleware), so the server refuses requests instead
// of admitting them; use NewVerifier to catch it at start-up.
func Verifier(client *agenttrust.Client, opts ...agenttrust.MiddlewareOption) auth.TokenVerifier {
	v, err := NewVerifier(client, opts...)
	if err != nil {
		cfgErr := fmt.Errorf("agenttrustmcp: verifier misconfigured: %w", err)
		return func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return nil, cfgErr }
	}
	return v
}

// RequireToken returns the SDK's bearer-token middleware with an AgentTrust
// verifier and scopes as the required scopes (403 when one is missing):
// auth.RequireBearerToken(Verifier(client, opts...),
// &auth.RequireBearerTokenOptions{Scopes: scopes}).
func RequireToken(client *agenttrust.Client, scopes []string, opts ...agenttrust.MiddlewareOption) func(http.Handler) http.Handler {
	return auth.RequireBearerToken(Verifier(client, opts...), &auth.RequireBearerTokenOptions{Scopes: scopes})
}

// Introspection returns the introspection result a verifier stored in ti,
// and whether there was one.
func Introspection(ti *auth.TokenInfo) (*agenttrust.IntrospectionResult, bool) {
	if ti == nil {
		return nil, false
	}
	r, ok := ti.Extra[ExtraIntrospection].(*agenttrust.IntrospectionResult)
	return r, ok && r != nil
}

func tokenInfo(res *agenttrust.IntrospectionResult) *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes:     res.Scopes,
		Expiration: res.ExpiresAt,
		UserID:     res.AgentID,
		Extra: map[string]any{
			ExtraOrgID:         res.OrgID,
			ExtraAgentID:       res.AgentID,
			ExtraIntrospection: res,
		},
	}
}

// rejection is a refused token: it matches auth.ErrInvalidToken (so the SDK
// answers 401) and unwraps to the core's *agenttrust.TokenRejectedError.
// Its text is fixed: the SDK sends it to the caller.
type rejection struct {
	err *agenttrust.TokenRejectedError
}

func (r *rejection) Error() string   { return auth.ErrInvalidToken.Error() }
func (r *rejection) Unwrap() []error { return []error{auth.ErrInvalidToken, r.err} }

// malformed is a malformed request: it matches auth.ErrOAuth, which the SDK
// answers with 400 (RFC 6750 invalid_request), and agenttrust.ErrInvalidToken.
// err, when set, is the core's rejection of a malformed token.
type malformed struct {
	what string // fixed text, never the token
	err  *agenttrust.TokenRejectedError
}

func (m *malformed) Error() string { return "invalid_request: " + m.what }
func (m *malformed) Unwrap() []error {
	if m.err != nil {
		return []error{auth.ErrOAuth, m.err}
	}
	return []error{auth.ErrOAuth, agenttrust.ErrInvalidToken}
}

// unavailable is a gateway failure. Its text is fixed: the SDK writes it
// into the HTTP answer, which must not expose gateway addresses.
type unavailable struct{ err error }

func (u *unavailable) Error() string   { return ErrGatewayUnavailable.Error() }
func (u *unavailable) Unwrap() []error { return []error{ErrGatewayUnavailable, u.err} }

func mapError(err error) error {
	var rej *agenttrust.TokenRejectedError
	if errors.As(err, &rej) {
		if rej.Malformed {
			return &malformed{"malformed bearer token", rej}
		}
		return &rejection{rej}
	}
	return &unavailable{err}
}
