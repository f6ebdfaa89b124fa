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
//	handler := agenttrustmcp.RequireToken(client,
//		tokenauth.WithTarget("files-mcp"), tokenauth.WithRequiredScopes("tools:call"),
//	)(mcp.NewStreamableHTTPHandler(getServer, nil))
//
// RequireToken takes the options of package tokenauth, like the net/http
// middleware tokenauth.RequireToken; it is the SDK's auth.RequireBearerToken
// with a Verifier and the required scopes as RequireBearerTokenOptions.Scopes.
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
// caller must not see, stays in the wrapped *tokenauth.RejectedError
// for the server's own logs.
//
// With RequireToken, the required scopes are checked by the SDK against the
// scopes the gateway reports, so a missing one is a 403. A Verifier used on
// its own sends tokenauth.WithRequiredScopes to the gateway instead, which
// answers a token lacking one as inactive: a 401, because a TokenVerifier
// cannot ask the SDK for a 403.
//
// The verifier caches positive answers for a few seconds (see
// tokenauth.Verifier for the trade-off between revocation latency and
// gateway load; tokenauth.WithCache(0) disables it).
package agenttrustmcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	agenttrust "github.com/agenttrustid/agenttrust-go"
	"github.com/agenttrustid/agenttrust-go/tokenauth"
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
// client, configured like tokenauth.NewVerifier (target, scopes, cache,
// clock, logger). A nil client or an invalid option is an error.
func NewVerifier(client *agenttrust.Client, opts ...tokenauth.Option) (auth.TokenVerifier, error) {
	v, err := tokenauth.NewVerifier(client, opts...)
	if err != nil {
		return nil, err
	}
	return adapt(v), nil
}

// adapt turns a tokenauth.Verifier into the SDK's verifier function.
func adapt(v *tokenauth.Verifier) auth.TokenVerifier {
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
	}
}

// Verifier is NewVerifier for use in one expression. An invalid
// configuration makes every verification fail with the configuration error
// (a 500 from the SDK's middleware), so the server refuses requests instead
// of admitting them; use NewVerifier to catch it at start-up.
func Verifier(client *agenttrust.Client, opts ...tokenauth.Option) auth.TokenVerifier {
	v, err := NewVerifier(client, opts...)
	if err != nil {
		return misconfigured(err)
	}
	return v
}

func misconfigured(err error) auth.TokenVerifier {
	cfgErr := fmt.Errorf("agenttrustmcp: verifier misconfigured: %w", err)
	return func(context.Context, string, *http.Request) (*auth.TokenInfo, error) { return nil, cfgErr }
}

// RequireToken returns the SDK's bearer-token middleware with an AgentTrust
// verifier configured by opts, as tokenauth.RequireToken is for net/http.
// The scopes of tokenauth.WithRequiredScopes become the SDK's required
// scopes (RequireBearerTokenOptions.Scopes), checked against the scopes the
// gateway reports: a token without one gets 403. They are not sent to the
// gateway, which would answer such a token as inactive (401). An invalid
// configuration makes every request fail with 500.
func RequireToken(client *agenttrust.Client, opts ...tokenauth.Option) func(http.Handler) http.Handler {
	var verifier auth.TokenVerifier
	var scopes []string
	v, err := tokenauth.NewVerifier(client, opts...)
	if err == nil {
		scopes = v.RequiredScopes()
		// The same configuration without the scopes: the last option wins.
		v, err = tokenauth.NewVerifier(client, append(opts[:len(opts):len(opts)], tokenauth.WithRequiredScopes())...)
	}
	if err != nil {
		verifier = misconfigured(err)
	} else {
		verifier = adapt(v)
	}
	return auth.RequireBearerToken(verifier, &auth.RequireBearerTokenOptions{Scopes: scopes})
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
// answers 401) and unwraps to the *tokenauth.RejectedError.
// Its text is fixed: the SDK sends it to the caller.
type rejection struct {
	err *tokenauth.RejectedError
}

func (r *rejection) Error() string   { return auth.ErrInvalidToken.Error() }
func (r *rejection) Unwrap() []error { return []error{auth.ErrInvalidToken, r.err} }

// malformed is a malformed request: it matches auth.ErrOAuth, which the SDK
// answers with 400 (RFC 6750 invalid_request), and tokenauth.ErrInvalidToken.
// err, when set, is the verifier's rejection of a malformed token.
type malformed struct {
	what string // fixed text, never the token
	err  *tokenauth.RejectedError
}

func (m *malformed) Error() string { return "invalid_request: " + m.what }
func (m *malformed) Unwrap() []error {
	if m.err != nil {
		return []error{auth.ErrOAuth, m.err}
	}
	return []error{auth.ErrOAuth, tokenauth.ErrInvalidToken}
}

// unavailable is a gateway failure. Its text is fixed: the SDK writes it
// into the HTTP answer, which must not expose gateway addresses.
type unavailable struct{ err error }

func (u *unavailable) Error() string   { return ErrGatewayUnavailable.Error() }
func (u *unavailable) Unwrap() []error { return []error{ErrGatewayUnavailable, u.err} }

func mapError(err error) error {
	var rej *tokenauth.RejectedError
	if errors.As(err, &rej) {
		if rej.Malformed {
			return &malformed{"malformed bearer token", rej}
		}
		return &rejection{rej}
	}
	return &unavailable{err}
}
