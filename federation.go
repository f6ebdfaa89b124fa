package agenttrust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// FederationService trusts external identity providers and turns their
// tokens into AgentTrust sessions (gateway).
type FederationService service

// FederationRegisterProviderParams are the arguments of
// Federation.RegisterProvider.
type FederationRegisterProviderParams struct {
	// Issuer is the provider's OIDC issuer URL.
	Issuer string
	Name   string
	// TrustLevel, e.g. "high", is sent when non-nil.
	TrustLevel *string
}

type federationRegisterWire struct {
	Issuer     string  `json:"issuer"`
	Name       string  `json:"name"`
	TrustLevel *string `json:"trust_level,omitempty"`
}

// RegisterProvider registers an external identity provider:
// POST /api/v1/federation/providers.
func (s *FederationService) RegisterProvider(ctx context.Context, p FederationRegisterProviderParams, opts ...RequestOption) (*FederationProvider, error) {
	body := &federationRegisterWire{Issuer: p.Issuer, Name: p.Name, TrustLevel: p.TrustLevel}
	return call[FederationProvider](ctx, s.client, &request{method: http.MethodPost, path: "/api/v1/federation/providers", body: body}, "provider", opts)
}

// FederationListProvidersParams are the arguments of
// Federation.ListProviders; there are none yet.
type FederationListProvidersParams struct{}

// ListProviders lists the registered providers:
// GET /api/v1/federation/providers.
func (s *FederationService) ListProviders(ctx context.Context, _ FederationListProvidersParams, opts ...RequestOption) ([]FederationProvider, error) {
	return list[FederationProvider](ctx, s.client, &request{path: "/api/v1/federation/providers"}, "providers", "provider", opts)
}

// DeleteProvider removes a provider:
// DELETE /api/v1/federation/providers/{provider_id}. Any 2xx reply is
// success; its body is not read.
func (s *FederationService) DeleteProvider(ctx context.Context, providerID string, opts ...RequestOption) error {
	return deleteAt(ctx, s.client, "/api/v1/federation/providers/{provider_id}", providerID, opts)
}

// FederationTokenParams are the arguments of Federation.IntrospectToken and
// Federation.InitSession. Printing them never reveals the token.
type FederationTokenParams struct {
	// Token is an external OIDC ID token or an AgentTrust federation
	// session token ("fed_…").
	Token string
	// IssuerHint names the expected issuer; sent when non-empty.
	IssuerHint string
}

// String describes the params without the token.
func (p FederationTokenParams) String() string {
	return joinFields("FederationTokenParams", "Token", redactedSecret(p.Token), "IssuerHint", strconv.Quote(p.IssuerHint))
}

// GoString is String, so that %#v hides the token too.
func (p FederationTokenParams) GoString() string { return p.String() }

// Format prints String for every verb.
func (p FederationTokenParams) Format(f fmt.State, verb rune) { formatRedacted(f, verb, p, p) }

// LogValue hides the token from log/slog.
func (p FederationTokenParams) LogValue() slog.Value {
	return slog.GroupValue(secretAttr("token", p.Token != ""), slog.String("issuer_hint", p.IssuerHint))
}

// FederationIntrospectParams are the arguments of Federation.IntrospectToken.
type FederationIntrospectParams = FederationTokenParams

// FederationInitSessionParams are the arguments of Federation.InitSession.
type FederationInitSessionParams = FederationTokenParams

type federationTokenWire struct {
	Token      string `json:"token"`
	IssuerHint string `json:"issuer_hint,omitempty"`
}

// IntrospectToken validates an external token: POST
// /api/v1/federation/tokens/introspect. If and only if that path answers
// 404, the same request is sent once to /api/v1/federation/tokens/verify,
// whose outcome is final (gateways serve one or the other). An inactive
// token is a result with Active false, not an error.
func (s *FederationService) IntrospectToken(ctx context.Context, p FederationIntrospectParams, opts ...RequestOption) (*FederationIntrospectionResult, error) {
	body := &federationTokenWire{Token: p.Token, IssuerHint: p.IssuerHint}
	r := &request{method: http.MethodPost, path: "/api/v1/federation/tokens/introspect", body: body, idempotent: true, secrets: []string{p.Token}}
	resp, err := s.client.do(ctx, r, opts)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		r.path = "/api/v1/federation/tokens/verify"
		resp, err = s.client.do(ctx, r, opts)
	}
	if err != nil {
		return nil, err
	}
	return decodeModel[FederationIntrospectionResult](resp, "")
}

// VerifyToken is IntrospectToken under its old name.
//
// Deprecated: use IntrospectToken.
func (s *FederationService) VerifyToken(ctx context.Context, p FederationIntrospectParams, opts ...RequestOption) (*VerifyFederatedTokenResult, error) {
	return s.IntrospectToken(ctx, p, opts...)
}

// InitSession opens a federation session from an external token:
// POST /api/v1/federation/sessions/init.
func (s *FederationService) InitSession(ctx context.Context, p FederationInitSessionParams, opts ...RequestOption) (*Session, error) {
	body := &federationTokenWire{Token: p.Token, IssuerHint: p.IssuerHint}
	return call[Session](ctx, s.client, &request{method: http.MethodPost, path: "/api/v1/federation/sessions/init", body: body, secrets: []string{p.Token}}, "", opts)
}

// FederationIssueIDTokenParams are the arguments of Federation.IssueIDToken.
type FederationIssueIDTokenParams struct {
	AgentID string
	// Audience is a single audience; sent when non-empty.
	Audience string
	// Scopes are sent when non-empty.
	Scopes []string
	// TTL is the lifetime in seconds; sent when non-zero.
	TTL int
}

type federationIssueWire struct {
	AgentID  string   `json:"agent_id"`
	Audience string   `json:"audience,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	TTL      int      `json:"ttl,omitempty"`
}

// IssueIDToken asks the gateway for an ID token for an agent:
// POST /api/v1/federation/tokens/issue. Gateways that issue no ID tokens
// answer 404, a *NotFoundError.
func (s *FederationService) IssueIDToken(ctx context.Context, p FederationIssueIDTokenParams, opts ...RequestOption) (*IDTokenResponse, error) {
	body := &federationIssueWire{AgentID: p.AgentID, Audience: p.Audience, Scopes: p.Scopes, TTL: p.TTL}
	return call[IDTokenResponse](ctx, s.client, &request{method: http.MethodPost, path: "/api/v1/federation/tokens/issue", body: body}, "", opts)
}

// FederationProvider is a trusted external identity provider.
type FederationProvider struct {
	ID     string `json:"id"`
	OrgID  string `json:"org_id"`
	Issuer string `json:"issuer"`
	Name   string `json:"name"`
	// JWKSURI is the external issuer's key set.
	JWKSURI               string    `json:"jwks_uri"`
	AuthorizationEndpoint string    `json:"authorization_endpoint"`
	TokenEndpoint         string    `json:"token_endpoint"`
	TrustLevel            string    `json:"trust_level"`
	Status                string    `json:"status"`
	CreatedAt             time.Time `json:"created_at"`
	UpdatedAt             time.Time `json:"updated_at"`
}

// UnmarshalJSON reads timestamps leniently.
func (p *FederationProvider) UnmarshalJSON(b []byte) error {
	*p = FederationProvider{}
	return unmarshalModel(b, p)
}

// FederationIntrospectionResult is the answer of Federation.IntrospectToken.
// An inactive token is a result with Active false.
type FederationIntrospectionResult struct {
	// Active is "active", or "valid" when "active" is absent or null.
	Active    bool      `json:"active"`
	AgentID   string    `json:"agent_id"`
	Issuer    string    `json:"issuer"`
	ExpiresAt time.Time `json:"expires_at"`
	// Error is the reason when the token is inactive.
	Error string `json:"error"`
}

// VerifyFederatedTokenResult is the deprecated name of
// FederationIntrospectionResult.
//
// Deprecated: use FederationIntrospectionResult.
type VerifyFederatedTokenResult = FederationIntrospectionResult

// Valid equals Active; it is kept for callers of the old verify API.
func (r *FederationIntrospectionResult) Valid() bool { return r.Active }

// UnmarshalJSON reads "active" with "valid" as the alternate key, and
// timestamps leniently.
func (r *FederationIntrospectionResult) UnmarshalJSON(b []byte) error {
	type plain FederationIntrospectionResult
	w := struct {
		*plain
		Active    *bool       `json:"active"`
		Valid     *bool       `json:"valid"`
		ExpiresAt lenientTime `json:"expires_at"`
	}{plain: (*plain)(r)}
	*r = FederationIntrospectionResult{}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	switch {
	case w.Active != nil:
		r.Active = *w.Active
	case w.Valid != nil:
		r.Active = *w.Valid
	}
	r.ExpiresAt = w.ExpiresAt.Time
	return nil
}

// IDTokenResponse is the answer of Federation.IssueIDToken.
// IDToken and Token hold the same token when the reply has only one of
// id_token and token. Printing it never reveals the token.
type IDTokenResponse struct {
	IDToken   string    `json:"id_token"`
	Token     string    `json:"token"`
	ExpiresIn int       `json:"expires_in"` // seconds
	ExpiresAt time.Time `json:"expires_at"`
}

// UnmarshalJSON fills each of id_token and token from the other when it is
// empty, and reads timestamps leniently.
func (t *IDTokenResponse) UnmarshalJSON(b []byte) error {
	*t = IDTokenResponse{}
	if err := unmarshalModel(b, t); err != nil {
		return err
	}
	if t.IDToken == "" {
		t.IDToken = t.Token
	}
	if t.Token == "" {
		t.Token = t.IDToken
	}
	return nil
}

// String describes the response without the token.
func (t IDTokenResponse) String() string {
	return joinFields("IDTokenResponse", "IDToken", redactedSecret(t.IDToken), "Token", redactedSecret(t.Token),
		"ExpiresIn", strconv.Itoa(t.ExpiresIn), "ExpiresAt", t.ExpiresAt.Format(time.RFC3339))
}

// GoString is String, so that %#v hides the token too.
func (t IDTokenResponse) GoString() string { return t.String() }

// Format prints String for every verb.
func (t IDTokenResponse) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t, t) }

// LogValue hides the token from log/slog.
func (t IDTokenResponse) LogValue() slog.Value {
	return slog.GroupValue(secretAttr("id_token", t.IDToken != ""), secretAttr("token", t.Token != ""),
		slog.Int("expires_in", t.ExpiresIn), slog.Time("expires_at", t.ExpiresAt))
}
