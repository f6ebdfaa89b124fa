package agenttrust

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const sampleProvider = `{"id": "fp-1", "org_id": "org-1", "issuer": "https://idp.example", "name": "IdP",
	"jwks_uri": "https://idp.example/jwks", "authorization_endpoint": "https://idp.example/auth", "token_endpoint": "https://idp.example/token",
	"trust_level": "high", "status": "active", "created_at": "2026-03-01T10:00:00Z", "updated_at": 12}`

func checkProvider(t *testing.T, p *FederationProvider) {
	t.Helper()
	assert.Equal(t, "fp-1", p.ID, "provider = %+v", p)
	assert.Equal(t, "https://idp.example", p.Issuer, "provider = %+v", p)
	assert.Equal(t, "https://idp.example/jwks", p.JWKSURI, "provider = %+v", p)
	assert.NotEmpty(t, p.AuthorizationEndpoint, "provider = %+v", p)
	assert.NotEmpty(t, p.TokenEndpoint, "provider = %+v", p)
	assert.Equal(t, "high", p.TrustLevel, "provider = %+v", p)
	assert.Equal(t, "active", p.Status, "provider = %+v", p)
	assert.False(t, p.CreatedAt.IsZero(), "provider = %+v", p)
	assert.True(t, p.UpdatedAt.IsZero(), "provider = %+v", p)
}

func TestFederationProviders(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	for _, tc := range []struct {
		level *string
		want  map[string]any
	}{
		{nil, map[string]any{"issuer": "https://idp.example", "name": "IdP"}},
		{Ptr(""), map[string]any{"issuer": "https://idp.example", "name": "IdP", "trust_level": ""}},
		{Ptr("high"), map[string]any{"issuer": "https://idp.example", "name": "IdP", "trust_level": "high"}},
	} {
		srv.reset(scriptReply{status: 201, body: `{"provider": ` + sampleProvider + `}`})
		p, err := c.Federation.RegisterProvider(ctx, FederationRegisterProviderParams{Issuer: "https://idp.example", Name: "IdP", TrustLevel: tc.level})
		require.NoError(t, err)
		r := srv.only(t)
		checkRequest(t, r, http.MethodPost, "/api/v1/federation/providers")
		checkBody(t, r, tc.want)
		checkProvider(t, p)
	}

	for _, body := range []string{
		`{"providers": [{"provider": ` + sampleProvider + `}, ` + sampleProvider + `]}`,
		`[` + sampleProvider + `, {"provider": ` + sampleProvider + `}]`,
	} {
		srv.reset(scriptReply{body: body})
		list, err := c.Federation.ListProviders(ctx, FederationListProvidersParams{})
		require.NoError(t, err, "%v", list)
		require.Len(t, list, 2, "%v, %v", list, err)
		checkRequest(t, srv.only(t), http.MethodGet, "/api/v1/federation/providers")
		checkProvider(t, &list[0])
		checkProvider(t, &list[1])
	}
	srv.reset(scriptReply{body: `{"provider": []}`})
	_, err := c.Federation.ListProviders(ctx, FederationListProvidersParams{})
	wantCode(t, err, CodeDecode)

	srv.reset(scriptReply{status: 204})
	require.NoError(t, c.Federation.DeleteProvider(ctx, "fp-1"))
	checkRequest(t, srv.only(t), http.MethodDelete, "/api/v1/federation/providers/fp-1")
}

func TestFederationIntrospect(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	const token = "eyJhbGciOiJSUzI1NiJ9.payload.signature"

	for _, tc := range []struct {
		hint string
		want map[string]any
	}{
		{"", map[string]any{"token": token}},
		{"https://idp.example", map[string]any{"token": token, "issuer_hint": "https://idp.example"}},
	} {
		srv.reset(scriptReply{body: `{"active": true, "agent_id": "a1", "issuer": "https://idp.example", "expires_at": "2026-03-01T10:00:00Z"}`})
		res, err := c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: token, IssuerHint: tc.hint})
		require.NoError(t, err)
		r := srv.only(t)
		checkRequest(t, r, http.MethodPost, "/api/v1/federation/tokens/introspect")
		checkBody(t, r, tc.want)
		assert.True(t, res.Active, "result = %+v", res)
		assert.True(t, res.Valid(), "result = %+v", res)
		assert.Equal(t, "a1", res.AgentID, "result = %+v", res)
		assert.NotEmpty(t, res.Issuer, "result = %+v", res)
		assert.False(t, res.ExpiresAt.IsZero(), "result = %+v", res)
	}

	for _, tc := range []struct {
		body   string
		active bool
		errMsg string
	}{
		{`{"valid": true}`, true, ""},
		{`{"active": null, "valid": true}`, true, ""},
		{`{"active": false, "valid": true}`, false, ""},
		{`{"valid": false, "error": "expired"}`, false, "expired"},
		{`{}`, false, ""},
	} {
		srv.reset(scriptReply{body: tc.body})
		res, err := c.Federation.VerifyToken(ctx, FederationIntrospectParams{Token: token})
		require.NoError(t, err, "%s: %+v", tc.body, res)
		assert.Equal(t, tc.active, res.Active, "%s: %+v, %v", tc.body, res, err)
		assert.Equal(t, tc.active, res.Valid(), "%s: %+v, %v", tc.body, res, err)
		assert.Equal(t, tc.errMsg, res.Error, "%s: %+v, %v", tc.body, res, err)
	}
}

func TestFederationIntrospectFallback(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t, WithRetryPolicy(RetryPolicy{MaxRetries: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	p := FederationIntrospectParams{Token: "fed_abc123", IssuerHint: "iss"}

	// 404 at introspect: the same request once more at verify.
	srv.reset(scriptReply{status: 404, body: `{"error": "no such route"}`}, scriptReply{body: `{"valid": true, "agent_id": "a1"}`})
	res, err := c.Federation.IntrospectToken(ctx, p)
	require.NoError(t, err, "%+v", res)
	require.True(t, res.Active, "%+v, %v", res, err)
	require.Equal(t, "a1", res.AgentID, "%+v, %v", res, err)
	reqs := srv.requests()
	require.Len(t, reqs, 2, "%d requests", len(reqs))
	checkRequest(t, reqs[0], http.MethodPost, "/api/v1/federation/tokens/introspect")
	checkRequest(t, reqs[1], http.MethodPost, "/api/v1/federation/tokens/verify")
	assert.True(t, bytes.Equal(reqs[0].Body, reqs[1].Body), "fallback changed the request: %s vs %s", reqs[0].Body, reqs[1].Body)
	assert.Equal(t, testKey, reqs[1].Header.Get("X-Api-Key"), "fallback changed the request: %s vs %s", reqs[0].Body, reqs[1].Body)

	// The fallback's outcome is final, even another 404.
	srv.reset(scriptReply{status: 404})
	_, err = c.Federation.IntrospectToken(ctx, p)
	wantCode(t, err, CodeNotFound)
	n := len(srv.requests())
	assert.Equal(t, 2, n, "%d requests, want 2", n)
	srv.reset(scriptReply{status: 404}, scriptReply{status: 401, body: `{"message": "bad key"}`})
	_, err = c.Federation.IntrospectToken(ctx, p)
	assert.ErrorIs(t, err, ErrAuthentication, "verify's 401 not returned: %v", err)

	// Any other error: no fallback (a 500 is not retried, a 503 is retried at
	// the same path, introspection being safe to repeat).
	for _, status := range []int{400, 401, 403, 500} {
		srv.reset(scriptReply{status: status})
		_, err := c.Federation.IntrospectToken(ctx, p)
		wantCode(t, err, map[int]string{400: CodeValidation, 401: CodeAuthFailed, 403: CodeAuthDenied, 500: "HTTP_500"}[status])
		for _, r := range srv.requests() {
			assert.Equal(t, "/api/v1/federation/tokens/introspect", r.RequestURI, "status %d fell back to %s", status, r.RequestURI)
		}
	}
	srv.reset(scriptReply{status: 503}, scriptReply{body: `{"active": true}`})
	res, err = c.Federation.IntrospectToken(ctx, p)
	require.NoError(t, err, "503 then OK: %+v", res)
	assert.True(t, res.Active, "503 then OK: %+v, %v", res, err)
	reqs = srv.requests()
	require.Len(t, reqs, 2, "requests %+v", reqs)
	assert.Equal(t, "/api/v1/federation/tokens/introspect", reqs[1].RequestURI, "requests %+v", reqs)
}

func TestFederationTokenRedaction(t *testing.T) {
	ctx := context.Background()
	const token = "fed_supersecret_session_token"
	srv := newScriptServer(t, scriptReply{status: 401, body: `{"message": "invalid token ` + token + `"}`})
	c := srv.client(t)
	_, err1 := c.Federation.IntrospectToken(ctx, FederationIntrospectParams{Token: token})
	_, err2 := c.Federation.InitSession(ctx, FederationInitSessionParams{Token: token})
	for _, err := range []error{err1, err2} {
		assert.Error(t, err, "token leaked: %v", err)
		assert.NotContains(t, err.Error(), token, "token leaked: %v", err)
		assert.NotContains(t, fmt.Sprintf("%+v", err), token, "token leaked: %v", err)
	}
	p := FederationTokenParams{Token: token, IssuerHint: "iss"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out := fmt.Sprintf(verb, p)
		assert.NotContains(t, out, token, "%s reveals the token: %s", verb, out)
		assert.NotContains(t, out, fmt.Sprintf("%x", token), "%s reveals the token: %s", verb, out)
	}
	out := fmt.Sprint(p)
	assert.Contains(t, out, "[redacted]", "String = %s", out)
	assert.Contains(t, out, "iss", "String = %s", out)
}

func TestFederationInitSession(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t, scriptReply{body: `{"session_id": "fs-1", "source": "federation", "mode": "read_only",
		"scope_ceiling": ["federation:invoke"], "provider_id": "fp-1", "issuer": "https://idp.example", "trust_level": "high"}`})
	c := srv.client(t)
	s, err := c.Federation.InitSession(ctx, FederationInitSessionParams{Token: "tok", IssuerHint: "https://idp.example"})
	require.NoError(t, err)
	r := srv.only(t)
	checkRequest(t, r, http.MethodPost, "/api/v1/federation/sessions/init")
	checkBody(t, r, map[string]any{"token": "tok", "issuer_hint": "https://idp.example"})
	assert.Equal(t, "fs-1", s.SessionID, "session = %+v", s)
	assert.Equal(t, SessionSourceFederation, s.Source, "session = %+v", s)
	assert.Equal(t, "fp-1", s.ProviderID, "session = %+v", s)
	assert.Equal(t, "high", s.TrustLevel, "session = %+v", s)
	require.Len(t, s.ScopeCeiling, 1, "session = %+v", s)
	assert.Equal(t, "federation:invoke", s.ScopeCeiling[0], "session = %+v", s)
	srv.reset(scriptReply{body: `{}`})
	_, err = c.Federation.InitSession(ctx, FederationInitSessionParams{Token: "tok"})
	require.NoError(t, err)
	checkBody(t, srv.only(t), map[string]any{"token": "tok"})
}

func TestFederationIssueIDToken(t *testing.T) {
	ctx := context.Background()
	srv := newScriptServer(t)
	c := srv.client(t)
	for _, tc := range []struct {
		p    FederationIssueIDTokenParams
		want map[string]any
	}{
		{FederationIssueIDTokenParams{AgentID: "a1"}, map[string]any{"agent_id": "a1"}},
		{FederationIssueIDTokenParams{AgentID: "a1", Scopes: []string{}}, map[string]any{"agent_id": "a1"}},
		{FederationIssueIDTokenParams{AgentID: "a1", Audience: "https://rp", Scopes: []string{"openid"}, TTL: 600},
			map[string]any{"agent_id": "a1", "audience": "https://rp", "scopes": []any{"openid"}, "ttl": 600}},
	} {
		srv.reset(scriptReply{body: `{"id_token": "eyJ.a.b", "expires_in": 600, "expires_at": "2026-03-01T10:10:00Z"}`})
		res, err := c.Federation.IssueIDToken(ctx, tc.p)
		require.NoError(t, err)
		r := srv.only(t)
		checkRequest(t, r, http.MethodPost, "/api/v1/federation/tokens/issue")
		checkBody(t, r, tc.want)
		_, has := r.bodyMap(t)["nonce"]
		assert.False(t, has, "nonce sent")
		assert.Equal(t, "eyJ.a.b", res.IDToken, "result = %+v", res)
		assert.Equal(t, "eyJ.a.b", res.Token, "result = %+v", res)
		assert.Equal(t, 600, res.ExpiresIn, "result = %+v", res)
		assert.False(t, res.ExpiresAt.IsZero(), "result = %+v", res)
	}
	for _, tc := range []struct{ body, id, tok string }{
		{`{"token": "t1"}`, "t1", "t1"},
		{`{"id_token": "i1", "token": "t1"}`, "i1", "t1"},
		{`{"id_token": "", "token": "t1"}`, "t1", "t1"},
		{`{"id_token": null, "token": null}`, "", ""},
	} {
		srv.reset(scriptReply{body: tc.body})
		res, err := c.Federation.IssueIDToken(ctx, FederationIssueIDTokenParams{AgentID: "a1"})
		require.NoError(t, err, "%s: %+v", tc.body, res)
		assert.Equal(t, tc.id, res.IDToken, "%s: %+v, %v", tc.body, res, err)
		assert.Equal(t, tc.tok, res.Token, "%s: %+v, %v", tc.body, res, err)
	}
	res := IDTokenResponse{IDToken: "eyJsecret.id.token", Token: "eyJsecret.id.token", ExpiresIn: 5}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(verb, res)
		assert.NotContains(t, out, "eyJsecret", "%s reveals the token: %s", verb, out)
		assert.NotContains(t, out, fmt.Sprintf("%x", "eyJsecret"), "%s reveals the token: %s", verb, out)
	}
	srv.reset(scriptReply{status: 404, body: `{"error": "not supported"}`})
	_, err := c.Federation.IssueIDToken(ctx, FederationIssueIDTokenParams{AgentID: "a1"})
	wantCode(t, err, CodeNotFound)
	n := len(srv.requests())
	assert.Equal(t, 1, n, "IssueIDToken fell back: %d requests", n)
}
